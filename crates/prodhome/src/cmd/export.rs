//! `prodhome export`: the lab for an engine that spans machines
//! (`compose`, `stack`, `k8s`: see `export/engines.rs` and the `export`
//! crate), or the dashboard's panels as a Grafana dashboard, with the
//! datasource and dashboard provisioning that make `grafana-server` show
//! the lab with no clicking.

mod engines;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use lab::InfluxPlan;
use web::Datasource;

use crate::cli::{Command, ExportDatasource};
use crate::context::Context;

/// `prodhome export`'s flags.
struct Options {
    datasource: ExportDatasource,
    url: Option<String>,
    out: Option<PathBuf>,
    cnpg: bool,
    force: bool,
}

/// `prodhome export ...` as parsed.
pub(crate) fn from_command(ctx: &Context, command: Command) -> Result<i32> {
    let Command::Export {
        what,
        datasource,
        url,
        out,
        cnpg,
        force,
    } = command
    else {
        unreachable!("dispatched as Command::Export")
    };
    let options = Options {
        datasource,
        url,
        out,
        cnpg,
        force,
    };
    run(ctx, &what, options)
}

fn run(ctx: &Context, what: &str, options: Options) -> Result<i32> {
    let target = match what {
        "compose" => Some(::export::Target::Compose),
        "stack" => Some(::export::Target::Stack),
        "k8s" => Some(::export::Target::K8s { cnpg: options.cnpg }),
        "grafana" => None,
        _ => bail!(
            "cannot export \"{what}\"; what can be exported: compose, stack, k8s (the lab) and grafana (the dashboard)"
        ),
    };
    if options.cnpg && what != "k8s" {
        bail!("--cnpg is for `prodhome export k8s`: CloudNativePG runs on Kubernetes");
    }
    let out = options.out.as_deref();
    match target {
        Some(target) => {
            let out =
                out.with_context(|| format!("say where to write: `prodhome export {what} --out DIR`"))?;
            engines::run(ctx, target, out, options.force)
        }
        None => grafana(
            ctx,
            options.datasource,
            options.url,
            out.unwrap_or(Path::new("grafana")),
        ),
    }
}

fn grafana(ctx: &Context, datasource: ExportDatasource, url: Option<String>, out: &Path) -> Result<i32> {
    let out = std::env::current_dir()
        .context("reading the current directory")?
        .join(out);
    let sample = &ctx.plan.sample;
    let source = match datasource {
        ExportDatasource::Influx => {
            let (default_url, database, token_env) = match &sample.influx {
                Some(InfluxPlan::V1 { url, db, .. }) => (url.clone(), db.clone(), None),
                Some(InfluxPlan::V2 {
                    url,
                    bucket,
                    token_env,
                    ..
                }) => (url.clone(), bucket.clone(), Some(token_env.clone())),
                None => {
                    eprintln!(
                        "note: lab {} writes no InfluxDB; add [sample.influx] (and \"influx\" to sinks) so Grafana has data",
                        ctx.plan.name
                    );
                    ("http://127.0.0.1:8086".to_string(), ctx.plan.name.clone(), None)
                }
            };
            Datasource::Influx {
                url: url.unwrap_or(default_url),
                database,
                token_env,
            }
        }
        ExportDatasource::Prometheus => {
            if !sample.prometheus {
                eprintln!(
                    "note: lab {} serves no /metrics; add \"prometheus\" to [sample] sinks so Prometheus has data to scrape",
                    ctx.plan.name
                );
            }
            Datasource::Prometheus {
                url: url.unwrap_or_else(|| "http://127.0.0.1:9090".into()),
            }
        }
    };
    let export = web::grafana_export(&ctx.plan.name, &source, &out);
    for (path, text) in &export.files {
        let path = out.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!(
        "\nstart Grafana with it:\n  grafana-server --homepath /usr/share/grafana cfg:default.paths.provisioning={}",
        out.join("provisioning").display()
    );
    Ok(0)
}
