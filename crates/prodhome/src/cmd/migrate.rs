//! `prodhome migrate FILE.sql` / `prodhome migrate -- COMMAND ARGS...`: a
//! schema change rehearsed on the running lab under load, with numbers.
//!
//! The phases read top to bottom in [`rehearse`]: measure hum before; start
//! the measuring hum, the lock watcher and the lag watcher; apply the change
//! (announced to the dashboard as a migration span); stop them; measure hum
//! after while polling every subscriber's catalog for the change; judge.

mod apply;
mod catalog;
mod command;
mod load;
mod locks;
mod report;
mod squawk;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use model::{Event, EventKind};
use pg::NodeSpec;
use tokio::sync::watch;
use tokio_postgres::Client;

use self::apply::{Applied, Retry};
use self::report::{Report, Subscriber, Thresholds};
use super::env::connection;
use crate::cli::MigrateArgs;
use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, args: &MigrateArgs) -> Result<i32> {
    let report = runtime()?.block_on(rehearse(ctx, args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(if report.verdict == "pass" { 0 } else { 1 })
}

/// The migrated node and the subscribers of the replications it publishes.
struct Nodes {
    publisher: NodeSpec,
    subscribers: Vec<NodeSpec>,
}

impl Nodes {
    fn load(ctx: &Context, node: &str) -> Result<Nodes> {
        let mut specs = ctx.node_specs()?;
        let mut names: Vec<&str> = Vec::new();
        for r in ctx.plan.replications.iter().filter(|r| r.publisher == node) {
            for s in &r.subscribers {
                if !names.contains(&s.as_str()) {
                    names.push(s);
                }
            }
        }
        let subscribers = specs
            .iter()
            .filter(|s| names.contains(&s.name.as_str()))
            .cloned()
            .collect();
        let i = specs
            .iter()
            .position(|s| s.name == node)
            .ok_or_else(|| anyhow!("node {node} has no port or password yet: run `prodhome up -d` first"))?;
        Ok(Nodes {
            publisher: specs.swap_remove(i),
            subscribers,
        })
    }
}

async fn connect(node: &NodeSpec) -> Result<Client> {
    pg::user(node, pg::SUPERUSER, node.credentials.superuser.expose())
        .await
        .with_context(|| format!("connecting to {} (is the lab up? `prodhome status`)", node.name))
}

/// What to apply, read before anything starts.
enum Change {
    Script { path: std::path::PathBuf, text: String },
    Command(Vec<String>),
}

impl Change {
    fn read(args: &MigrateArgs) -> Result<Change> {
        match &args.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "reading the migration file {}: give a SQL file, or `-- COMMAND ARGS...`",
                        path.display()
                    )
                })?;
                Ok(Change::Script {
                    path: path.clone(),
                    text,
                })
            }
            None => Ok(Change::Command(args.command.clone())),
        }
    }

    fn label(&self) -> String {
        match self {
            Change::Script { path, .. } => path.display().to_string(),
            Change::Command(argv) => argv.join(" "),
        }
    }
}

async fn rehearse(ctx: &Context, args: &MigrateArgs) -> Result<Report> {
    let info = ctx.state.running_daemon().ok_or_else(|| {
        anyhow!(
            "lab {} is not running: start it with `prodhome up -d`, then rehearse the migration",
            ctx.plan.name
        )
    })?;
    let control = ctx.control(&info)?;
    let node = migrated_node(ctx, args);
    ctx.check_node(&node)?;
    let change = Change::read(args)?;
    let lint = squawk::lint(args.file.as_deref());
    let nodes = Nodes::load(ctx, &node)?;
    let publisher = connect(&nodes.publisher).await?;
    let subscribers = connect_subscribers(&nodes).await?;
    let schema_before = catalog::snapshot(&publisher)
        .await
        .with_context(|| format!("reading {node}'s schema"))?;
    let errors_before = apply_errors(&subscribers).await;
    let conn = connection(ctx, &node)?;
    let load = load::prepare(ctx, hum_target(&node, &conn), args.rate).await?;
    let before = load::window(&load, args.window).await?;

    // The script's session exists before the clock starts, so the watcher knows its pid.
    let session = script_session(&change, &nodes).await?;
    let hum_before = hum_sessions(&publisher).await;
    let during_hum = load::start(&load);
    wait_for_hum(&publisher, hum_before + u64::from(load::CLIENTS)).await;
    let who = match &session {
        Some((_, pid)) => locks::Who::Pid(*pid),
        None => locks::Who::NewSince(locks::client_pids(&publisher).await?),
    };
    let (stop_locks, locks_stopped) = watch::channel(false);
    let watcher = tokio::spawn(locks::watch(connect(&nodes.publisher).await?, who, locks_stopped));
    let (stop_lag, lag_stopped) = watch::channel(false);
    let lag = tokio::spawn(watch_lag(ctx.client(&info), lag_stopped));

    let label = change.label();
    announce(&control, &node, "started", &label).await;
    let started = Instant::now();
    let applied = apply_change(&change, session.as_ref(), &conn, args).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let ended = Instant::now();
    let phase = if applied.ok { "finished" } else { "failed" };
    announce(&control, &node, phase, &label).await;
    let _ = stop_locks.send(true);
    let locks = watcher.await.map_err(|e| anyhow!("lock watcher: {e}"))?;
    let during = during_hum.finish().await?;

    let schema_after = catalog::snapshot(&publisher).await?;
    let diff = catalog::Change::between(&schema_before, &schema_after);
    let arrivals = futures_util::future::join_all(
        subscribers
            .iter()
            .map(|(_, c)| catalog::wait_for(c, &diff, ended, args.replication_timeout)),
    );
    let (after, arrivals) = tokio::join!(load::window(&load, args.window), arrivals);
    let after = after?;
    let _ = stop_lag.send(true);
    let lags = lag.await.unwrap_or_default();

    let subs = subscriber_results(&subscribers, arrivals, errors_before, &diff, &lags).await;
    let measured = Measured {
        node,
        label,
        applied,
        duration_ms,
        locks,
        hum_workload: load.why.clone(),
        before,
        during,
        after,
        diff,
        subs,
        lint,
    };
    Ok(judged(ctx, args, measured))
}

/// Everything a rehearsal measured, for its report.
struct Measured {
    node: String,
    label: String,
    applied: Applied,
    duration_ms: u64,
    locks: locks::LockReport,
    hum_workload: String,
    before: load::Phase,
    during: load::Phase,
    after: load::Phase,
    diff: catalog::Change,
    subs: Vec<Subscriber>,
    lint: squawk::Lint,
}

/// The report of what was measured, judged against the thresholds.
fn judged(ctx: &Context, args: &MigrateArgs, m: Measured) -> Report {
    let Measured {
        node,
        label,
        applied,
        duration_ms,
        locks,
        hum_workload,
        before,
        during,
        after,
        diff,
        subs,
        lint,
    } = m;
    let replicated_after_ms = replicated_after(&diff, &subs);
    let mut held = locks.locks.clone();
    held.extend(applied.held.iter().cloned());
    let Applied {
        ok,
        mode,
        attempts,
        error,
        ..
    } = applied;
    let mut report = Report {
        lab: ctx.plan.name.clone(),
        node,
        migration: label,
        mode,
        ok,
        error,
        attempts,
        duration_ms,
        blocked_sessions: locks.blocked_sessions,
        lock_waits: locks.lock_waits,
        max_lock_wait_ms: locks.max_lock_wait_ms,
        migration_waited_ms: locks.migration_waited_ms,
        locks: held.into_iter().collect(),
        hum_workload,
        p99_ms_before: before.p99_ms,
        p99_ms_during: during.p99_ms,
        p99_ms_after: after.p99_ms,
        errors_during: during.errors,
        before,
        during,
        after,
        schema_changed: !diff.is_empty(),
        replicated_after_ms,
        subscribers: subs,
        squawk: lint,
        thresholds: Thresholds {
            max_blocked_ms: args.max_blocked_ms,
            max_p99_ms: args.max_p99_ms,
        },
        verdict: String::new(),
        reasons: Vec::new(),
    };
    report.judge();
    report
}

/// The node `--node` names, else the first replication's publisher.
fn migrated_node(ctx: &Context, args: &MigrateArgs) -> String {
    args.node
        .clone()
        .or_else(|| ctx.plan.replications.first().map(|r| r.publisher.clone()))
        .unwrap_or_else(|| "publisher".into())
}

async fn connect_subscribers(nodes: &Nodes) -> Result<Vec<(String, Client)>> {
    let mut subscribers = Vec::new();
    for s in &nodes.subscribers {
        subscribers.push((s.name.clone(), connect(s).await?));
    }
    Ok(subscribers)
}

/// Each subscriber's apply error count so far, to count those the change adds.
async fn apply_errors(subscribers: &[(String, Client)]) -> Vec<Option<i64>> {
    let mut errors = Vec::new();
    for (_, c) in subscribers {
        errors.push(catalog::apply_errors(c).await);
    }
    errors
}

/// The migrated node as hum's measuring load reaches it.
fn hum_target(node: &str, conn: &super::env::Connection) -> hum::Target {
    hum::Target {
        host: "127.0.0.1".into(),
        port: conn.port,
        user: pg::SUPERUSER.into(),
        password: Some(conn.password.clone()),
        dbname: pg::DATABASE.into(),
        name: node.to_string(),
    }
}

/// A script's own session and its pid, opened before the clock starts.
async fn script_session(change: &Change, nodes: &Nodes) -> Result<Option<(Client, i32)>> {
    match change {
        Change::Script { .. } => {
            let c = connect(&nodes.publisher).await?;
            c.batch_execute("SET application_name = 'prodhome-migrate'")
                .await?;
            let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
            Ok(Some((c, pid)))
        }
        Change::Command(_) => Ok(None),
    }
}

/// Applies the change with `--lock-timeout` and `--retries`.
async fn apply_change(
    change: &Change,
    session: Option<&(Client, i32)>,
    conn: &super::env::Connection,
    args: &MigrateArgs,
) -> Applied {
    let retry = Retry {
        lock_timeout: args.lock_timeout,
        retries: args.retries,
    };
    match (change, session) {
        (Change::Script { path, text }, Some((client, _))) => apply::script(client, path, text, retry).await,
        (Change::Command(argv), _) => command::run(argv, conn, retry).await,
        (Change::Script { .. }, None) => unreachable!("a script has its session"),
    }
}

/// What each subscriber saw of the change: when it arrived, its lag and
/// the apply errors it added.
async fn subscriber_results(
    subscribers: &[(String, Client)],
    arrivals: Vec<Option<u64>>,
    errors_before: Vec<Option<i64>>,
    diff: &catalog::Change,
    lags: &BTreeMap<String, Option<i64>>,
) -> Vec<Subscriber> {
    let mut subs = Vec::new();
    for (((name, c), arrived), before) in subscribers.iter().zip(arrivals).zip(errors_before) {
        let errors = match (before, catalog::apply_errors(c).await) {
            (Some(b), Some(a)) => Some(a - b),
            _ => None,
        };
        subs.push(subscriber(
            name,
            diff,
            arrived,
            lags.get(name).copied().flatten(),
            errors,
        ));
    }
    subs
}

fn subscriber(
    name: &str,
    diff: &catalog::Change,
    arrived: Option<u64>,
    max_lag_bytes: Option<i64>,
    apply_errors: Option<i64>,
) -> Subscriber {
    let state = match (diff.is_empty(), arrived) {
        (true, _) => "nothing to replicate (the schema did not change)",
        (false, Some(_)) => "replicated",
        (false, None) => "not replicated (ddl follow off or failed)",
    };
    Subscriber {
        subscriber: name.to_string(),
        has_change: diff.is_empty() || arrived.is_some(),
        change_after_ms: arrived.filter(|_| !diff.is_empty()),
        state: state.into(),
        max_lag_bytes,
        apply_errors,
    }
}

/// When the last subscriber had the change; `None` when one never did.
fn replicated_after(diff: &catalog::Change, subs: &[Subscriber]) -> Option<u64> {
    if diff.is_empty() {
        return Some(0);
    }
    subs.iter()
        .map(|s| s.change_after_ms)
        .try_fold(0, |m, s| s.map(|s| m.max(s)))
}

/// Tells the dashboard; a daemon that refuses is said on stderr, not fatal.
async fn announce(control: &api::Client, node: &str, phase: &str, file: &str) {
    let event = Event::now(
        node,
        EventKind::Migration {
            phase: phase.into(),
            file: file.into(),
        },
    );
    if let Err(e) = control.event(&event).await {
        eprintln!("prodhome: the dashboard will not show the migration {phase}: {e:#}");
    }
}

async fn hum_sessions(client: &Client) -> u64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'prodhome-hum'",
            &[],
        )
        .await
        .map(|r| r.get::<_, i64>(0) as u64)
        .unwrap_or(0)
}

/// Until the measuring hum's sessions are connected (at most 10 s), so the
/// migration starts under its load.
async fn wait_for_hum(client: &Client, sessions: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hum_sessions(client).await < sessions && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The daemon's replication links every 250 ms until `stop`: the largest
/// lag seen per subscriber.
async fn watch_lag(client: api::Client, mut stop: watch::Receiver<bool>) -> BTreeMap<String, Option<i64>> {
    let mut most: BTreeMap<String, Option<i64>> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return most,
        }
        if let Ok(status) = client.status().await {
            for link in status.replication {
                let seen = most.entry(link.subscriber).or_default();
                *seen = (*seen).max(link.lag_bytes);
            }
        }
    }
}
