//! `prodhome hum`: traffic at a lab node (`--node`, credentials from the
//! state directory) or any server (`--url`), until the duration, the
//! transaction limit or Ctrl-C; then the summary (text, or `--json`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow};
use hum::{HumOptions, Rate, Stochastic, Target, Workload};

use super::env::connection;
use crate::cli::{Global, HumArgs};
use crate::context::{Context, runtime};

pub(crate) fn run(global: &Global, args: HumArgs) -> Result<i32> {
    let rate: Rate = args.rate.parse().map_err(|e: String| anyhow!(e))?;
    let (ctx, target, read_targets) = targets(global, &args)?;
    let workload = match args.workload.as_str() {
        "tpcb" => Workload::Tpcb { scale: args.scale },
        "books" => Workload::Books,
        file => {
            let path = PathBuf::from(file);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("reading the script {file} (workloads are tpcb, books, or a script file)")
            })?;
            Workload::Script { path, text }
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let opts = HumOptions {
        target,
        read_targets,
        workload,
        clients: args.clients,
        rate,
        duration: args.duration,
        transactions: args.transactions,
        seed,
        stochastic: Stochastic {
            spikes: args.spikes,
            long_tx_share: args.long_tx_share,
            disconnect_share: args.disconnect_share,
        },
        ledger: args.ledger,
        progress: Some(args.progress).filter(|p| !p.is_zero()),
    };
    let init_only = args.init && args.duration.is_none() && args.transactions.is_none();
    let summary = runtime()?.block_on(async {
        if args.init {
            let started = std::time::Instant::now();
            match ctx.as_ref().filter(|_| args.url.is_none()) {
                // A lab node: its subscribers get the new tables too.
                Some(ctx) => init_shared(ctx, &opts.target, &opts.workload, true).await?,
                None => hum::init_fresh(&opts.target, &opts.workload).await?,
            }
            eprintln!(
                "hum: {} ready on {} in {:.1} s",
                opts.workload.name(),
                opts.target.name,
                started.elapsed().as_secs_f64()
            );
            if init_only {
                return Ok(None);
            }
        }
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            // Ctrl-C or SIGTERM: stop and print what was done so far.
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match &mut term { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            let _ = stop.send(true);
        });
        Ok::<_, anyhow::Error>(Some(hum::run(opts, None, stop_rx).await?))
    })?;
    let Some(summary) = summary else { return Ok(0) };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{summary}");
    }
    let failed = summary.ledger_error.is_some() || (summary.transactions == 0 && summary.errors > 0);
    Ok(if failed { 1 } else { 0 })
}

/// Prepares `workload`'s tables on `target`, a node of the lab, and on the
/// subscribers that should have them (`daemon::offline`, as the daemon does).
pub(crate) async fn init_shared(
    ctx: &Context,
    target: &Target,
    workload: &Workload,
    fresh: bool,
) -> Result<()> {
    let nodes = ctx.node_specs()?;
    let lab = ctx.offline();
    Ok(lab.init_hum_tables(&nodes, target, workload, fresh).await?)
}

/// The lab (when a node is named), the write target and the read targets,
/// from URLs or lab nodes.
fn targets(global: &Global, args: &HumArgs) -> Result<(Option<Context>, Target, Vec<Target>)> {
    let needs_lab = args.url.is_none() || !args.read_nodes.is_empty();
    let ctx = if needs_lab {
        Some(Context::load(global)?)
    } else {
        None
    };
    let node = |name: &str| -> Result<Target> {
        let ctx = ctx.as_ref().expect("loaded when a node is named");
        let conn = connection(ctx, name)?;
        Ok(Target {
            host: "127.0.0.1".into(),
            port: conn.port,
            user: pg::SUPERUSER.into(),
            password: Some(conn.password),
            dbname: pg::DATABASE.into(),
            name: name.into(),
        })
    };
    let target = match &args.url {
        Some(url) => Target::from_url(url, None)?,
        None => node(&args.node)?,
    };
    let mut reads = Vec::new();
    for name in &args.read_nodes {
        reads.push(node(name)?);
    }
    for url in &args.read_urls {
        reads.push(Target::from_url(url, None)?);
    }
    Ok((ctx, target, reads))
}
