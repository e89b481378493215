//! `prodhome data fill` / `data plan`: synthetic rows for the lab's own
//! schema. This file maps the lab's `[data.TABLE]` sections and the flags
//! onto a `datagen::Request`, shows progress, and with `--wait` runs the
//! same proof `verify` does.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use datagen::copy::Progress;
use datagen::{CopyFormat, FillOptions, FillPlan, Request, Rows, TableOverride};
use serde::Serialize;
use tokio_postgres::{Client, Config, NoTls};

use crate::cli::{CopyFormatArg, DataCommand, DataFillArgs};
use crate::cmd::env::connection;
use crate::cmd::verify;
use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, command: DataCommand) -> Result<i32> {
    runtime()?.block_on(async {
        match command {
            DataCommand::Fill(args) => fill(ctx, args).await,
            DataCommand::Plan {
                tables,
                node,
                rows,
                json,
            } => {
                let node = target(ctx, node.as_deref())?;
                let client = connect(&config(ctx, &node)?, &node).await?;
                let rows = rows.map_or(Rows::Scale(1), Rows::Count);
                let plan = load_plan(ctx, &client, &node, tables, rows).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&plan)?);
                } else {
                    print_plan(&plan, &node);
                }
                Ok(0)
            }
        }
    })
}

/// `--node`, else the first replication's publisher, else the first node.
fn target(ctx: &Context, node: Option<&str>) -> Result<String> {
    let name = node
        .map(str::to_string)
        .or_else(|| ctx.plan.replications.first().map(|r| r.publisher.clone()))
        .or_else(|| ctx.plan.nodes.first().map(|n| n.name.clone()))
        .ok_or_else(|| anyhow!("lab {} has no postgres node to fill", ctx.plan.name))?;
    ctx.check_node(&name)?;
    Ok(name)
}

fn config(ctx: &Context, node: &str) -> Result<Config> {
    let conn = connection(ctx, node)?;
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(conn.port)
        .user(pg::SUPERUSER)
        .password(conn.password.expose())
        .dbname(pg::DATABASE)
        .application_name("prodhome data");
    Ok(config)
}

async fn connect(config: &Config, node: &str) -> Result<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .with_context(|| format!("connecting to node {node}: is the lab up? (`prodhome status`)"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// The flags' tables, else the tables the node publishes (all of them when
/// a replication publishes `all`).
fn default_tables(ctx: &Context, node: &str, tables: Vec<String>) -> Vec<String> {
    if !tables.is_empty() {
        return tables;
    }
    let mut out = Vec::new();
    for repl in ctx.plan.replications.iter().filter(|r| r.publisher == node) {
        match &repl.tables {
            lab::Tables::All => return Vec::new(),
            lab::Tables::List(list) => out.extend(list.iter().cloned()),
        }
    }
    out
}

/// The lab's `[data.TABLE]` sections as datagen's overrides.
fn overrides(ctx: &Context) -> BTreeMap<String, TableOverride> {
    ctx.plan
        .data
        .iter()
        .map(|d| {
            let columns = d
                .columns
                .iter()
                .map(|(name, g)| (name.clone(), named(g)))
                .collect();
            (
                d.table.clone(),
                TableOverride {
                    rows: d.rows,
                    columns,
                },
            )
        })
        .collect()
}

fn named(g: &lab::DataGenerator) -> datagen::Named {
    match g {
        lab::DataGenerator::Email => datagen::Named::Email,
        lab::DataGenerator::Name => datagen::Named::Name,
        lab::DataGenerator::Lorem => datagen::Named::Lorem,
        lab::DataGenerator::Range(lo, hi) => datagen::Named::Range { lo: *lo, hi: *hi },
        lab::DataGenerator::List { values, weights } => datagen::Named::List {
            values: values.clone(),
            weights: weights.clone(),
        },
    }
}

async fn load_plan(
    ctx: &Context,
    client: &Client,
    node: &str,
    tables: Vec<String>,
    rows: Rows,
) -> Result<FillPlan> {
    let catalog = datagen::catalog::read(client)
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("reading the tables of node {node}"))?;
    let request = Request {
        tables: default_tables(ctx, node, tables),
        rows,
        overrides: overrides(ctx),
    };
    datagen::plan(&catalog, &request).map_err(|e| anyhow!("{e}"))
}

fn print_plan(plan: &FillPlan, node: &str) {
    println!("data plan for node {node} (parents first; one depth fills in parallel):");
    for t in &plan.tables {
        println!("{} — {} rows, depth {}", t.name, t.rows, t.depth);
        for c in &t.columns {
            println!("  {:<20} {:<28} {}", c.name, c.type_name, c.why);
        }
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    node: &'a str,
    #[serde(flatten)]
    report: &'a datagen::FillReport,
    /// With --wait: did verify pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
}

async fn fill(ctx: &Context, args: DataFillArgs) -> Result<i32> {
    let node = target(ctx, args.node.as_deref())?;
    let config = config(ctx, &node)?;
    let client = connect(&config, &node).await?;
    let rows = match (args.rows, args.scale) {
        (Some(n), _) => Rows::Count(n),
        (None, Some(s)) => Rows::Scale(s),
        (None, None) => return Err(anyhow!("say how many rows: --rows N or --scale S")),
    };
    let plan = load_plan(ctx, &client, &node, args.tables.clone(), rows).await?;
    ensure_ledgers(ctx, &node, &client).await?;
    let progress = Progress::new(&plan);
    let ticker = Arc::new(Ticker::new(progress.clone(), std::io::stderr().is_terminal()));
    let ticking = tokio::spawn(ticker.clone().run());
    let result = tokio::select! {
        r = datagen::fill(&config, &plan, options(&args), progress.clone()) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    ticking.abort();
    // The last state, so even a short fill shows its line once done.
    ticker.draw();
    if ticker.terminal {
        eprintln!();
    }
    let report = match result {
        None => {
            stopped(&client, &progress).await;
            return Ok(130);
        }
        Some(Err(e)) => {
            stopped(&client, &progress).await;
            return Err(anyhow!("{e}")).with_context(|| format!("filling node {node}"));
        }
        Some(Ok(r)) => r,
    };
    finish(ctx, &args, &node, &report).await
}

/// The flags as datagen's options.
fn options(args: &DataFillArgs) -> FillOptions {
    let mut opts = FillOptions::new(args.seed);
    if let Some(n) = args.streams {
        opts.streams = n as usize;
    }
    opts.format = match args.copy_format {
        CopyFormatArg::Auto => CopyFormat::Auto,
        CopyFormatArg::Text => CopyFormat::Text,
    };
    opts.keys_after_load = !args.keep_keys;
    opts
}

/// After a fill: the report, and with `--wait` the proof; the exit code.
async fn finish(ctx: &Context, args: &DataFillArgs, node: &str, report: &datagen::FillReport) -> Result<i32> {
    if !args.json {
        print_report(report, node);
    }
    let verified = if args.wait {
        let proof = verify::prove(ctx, args.timeout, None).await?;
        if !args.json {
            verify::print_proof(&proof);
            if proof.ok {
                println!("subscribers caught up: `prodhome verify` passes");
            }
        }
        Some(proof.ok)
    } else {
        None
    };
    if args.json {
        let summary = Summary {
            node,
            report,
            verified,
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(if verified == Some(false) { 1 } else { 0 })
}

/// An interrupted or failed fill: the keys it dropped for the load are
/// built again (the tables are whole), then how far each table got.
async fn stopped(client: &Client, progress: &Progress) {
    match datagen::keys::restore(client).await {
        Ok(keys) if !keys.is_empty() => {
            eprintln!("built again the keys dropped for the load: {}", keys.join(", "))
        }
        Ok(_) => {}
        Err(e) => eprintln!("{e:#}; the next `prodhome data fill` builds them"),
    }
    eprintln!("stopped; committed so far (run the same command again to resume):");
    for t in &progress.tables {
        eprintln!(
            "  {}: {} of {} rows",
            t.name,
            t.done.load(Ordering::Relaxed),
            t.rows
        );
    }
}

/// `prodhome.data_fills` on every node, subscribers before the node
/// written to: a `FOR ALL TABLES` publication sends the ledger's rows too.
async fn ensure_ledgers(ctx: &Context, node: &str, client: &Client) -> Result<()> {
    for other in ctx.plan.nodes.iter().filter(|n| n.name != node) {
        let c = connect(&config(ctx, &other.name)?, &other.name).await?;
        datagen::ledger::ensure(&c)
            .await
            .map_err(|e| anyhow!("on node {}: {e}", other.name))?;
    }
    datagen::ledger::ensure(client)
        .await
        .map_err(|e| anyhow!("on node {node}: {e}"))
}

/// The progress line: a bar, rows, rows/s, MB/s and ETA, redrawn in place
/// on a terminal; elsewhere (a log, CI) a plain line now and then.
struct Ticker {
    progress: Arc<Progress>,
    terminal: bool,
    started: Instant,
    /// Rows an earlier run had committed: not counted in the rate.
    first: u64,
}

impl Ticker {
    fn new(progress: Arc<Progress>, terminal: bool) -> Ticker {
        let first = progress
            .tables
            .iter()
            .map(|t| t.done.load(Ordering::Relaxed))
            .sum();
        Ticker {
            progress,
            terminal,
            started: Instant::now(),
            first,
        }
    }

    /// Draws now, then every half second on a terminal, every 5 s elsewhere.
    async fn run(self: Arc<Ticker>) {
        let every = if self.terminal { 500 } else { 5000 };
        let mut interval = tokio::time::interval(Duration::from_millis(every));
        loop {
            interval.tick().await;
            self.draw();
        }
    }

    fn draw(&self) {
        let p = &self.progress.tables;
        let total: u64 = p.iter().map(|t| t.rows).sum();
        let done: u64 = p.iter().map(|t| t.done.load(Ordering::Relaxed)).sum();
        let bytes: u64 = p.iter().map(|t| t.bytes.load(Ordering::Relaxed)).sum();
        let secs = self.started.elapsed().as_secs_f64();
        let line = progress_line(done, total, done.saturating_sub(self.first), bytes, secs);
        if self.terminal {
            eprint!("\r{} {line}   ", bar(done, total));
        } else {
            eprintln!("data fill: {line}");
        }
    }
}

/// `done/total rows  R rows/s  M MB/s  ETA Ns`: `added` rows and `bytes`
/// in `secs` give the rate.
fn progress_line(done: u64, total: u64, added: u64, bytes: u64, secs: f64) -> String {
    let secs = secs.max(1e-3);
    let rate = added as f64 / secs;
    let eta = if done >= total {
        "0s".to_string()
    } else if rate > 0.0 {
        format!("{:.0}s", (total - done) as f64 / rate)
    } else {
        "?".into()
    };
    format!(
        "{done}/{total} rows  {rate:.0} rows/s  {:.1} MB/s  ETA {eta}",
        bytes as f64 / 1e6 / secs
    )
}

/// `[#####-----] 50%`.
fn bar(done: u64, total: u64) -> String {
    let share = if total == 0 {
        1.0
    } else {
        done.min(total) as f64 / total as f64
    };
    let full = (share * 20.0).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(full),
        "-".repeat(20 - full),
        share * 100.0
    )
}

fn print_report(report: &datagen::FillReport, node: &str) {
    for t in &report.tables {
        if t.already_filled {
            println!(
                "{}: already filled with seed {} and {} rows; nothing added",
                t.table, report.seed, t.rows
            );
        } else if t.resumed_from > 0 {
            println!(
                "{}: resumed at row {}, added {} ({} rows in all)",
                t.table, t.resumed_from, t.added, t.rows
            );
        } else {
            println!("{}: added {} rows", t.table, t.added);
        }
        if !t.keys_built_after_load.is_empty() {
            println!(
                "{}: the table was empty, so {} were built after the load (same names and definitions), as pgbench -i builds its keys",
                t.table,
                t.keys_built_after_load.join(", ")
            );
        }
    }
    println!(
        "filled node {node}: {} rows in {:.1}s ({:.0} rows/s, {:.1} MB/s), seed {}, {} COPY streams ({})",
        report.rows_added,
        report.seconds,
        report.rows_per_sec,
        report.mb_per_sec,
        report.seed,
        report.streams,
        formats(report)
    );
}

/// The COPY formats the tables used: `binary`, `text` or both.
fn formats(report: &datagen::FillReport) -> String {
    let mut f: Vec<&str> = report
        .tables
        .iter()
        .filter(|t| !t.already_filled)
        .map(|t| t.format)
        .collect();
    f.sort_unstable();
    f.dedup();
    if f.is_empty() {
        "nothing written".into()
    } else {
        f.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_gives_rows_per_second_and_an_eta() {
        assert_eq!(
            progress_line(500, 1000, 250, 2_000_000, 2.0),
            "500/1000 rows  125 rows/s  1.0 MB/s  ETA 4s"
        );
        assert!(progress_line(0, 1000, 0, 0, 1.0).ends_with("ETA ?"));
        assert!(progress_line(1000, 1000, 1000, 0, 1.0).ends_with("ETA 0s"));
        assert_eq!(bar(1, 2), format!("[{}{}]  50%", "#".repeat(10), "-".repeat(10)));
    }
}
