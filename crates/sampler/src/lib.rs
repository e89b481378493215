//! The sampler: reads every Postgres node of the lab at an interval and
//! turns what it sees into [`model::Point`]s for the store — lock activity,
//! sessions, database counters as rates, replication lag from both ends,
//! the node's CPU and memory, and the lab's own queries.
//!
//! Inputs are small options the daemon builds from the lab's Plan
//! ([`SamplerOptions`]: nodes, replications, custom queries, interval);
//! output goes to a [`model::PointSender`] (points; the store gives one
//! out, its queues drop and count what does not fit) and a channel of
//! [`model::Event`]s. [`run`] samples until told to stop; [`Sampler`] runs
//! one cycle at a time for tests and benchmarks.
//!
//! The sampler must never hurt the lab it watches. Each node has its own
//! task, its own session and its own deadline, so a paused or dead node
//! never holds up another. Sessions set `statement_timeout` and
//! `lock_timeout`, prepare their statements once, and pipeline a cycle's
//! queries. A cycle that overruns the interval skips the ticks it missed
//! rather than queueing them. A collector that fails yields a
//! `sample_errors` point (and an event when it starts failing), never a
//! crash. Handing points to the store never waits.
//!
//! # Measurements
//!
//! Every point has the tag `node`. A field keeps its type forever
//! (InfluxDB fixes it on first write); each field appears with exactly
//! one set of tag keys. `_s` fields are seconds, `_bytes` bytes. Fields
//! described as counters (`apply_errors`, `sync_errors`, `skipped_ticks`)
//! only grow between resets; the prometheus sink types them as counters
//! and names every field in Prometheus's base units (its table is the
//! store crate's `prometheus_series`: keep it in step with this one).
//!
//! | measurement | tags (besides `node`) | fields |
//! |---|---|---|
//! | `locks` | — | `waiting` i64: backends waiting for a lock; `blocked` i64: backends that `pg_blocking_pids` says are blocked; `oldest_wait_s` f64: the longest current lock wait; `longest_chain` i64: the longest chain of waits (A waits for B waits for C = 2) |
//! | `locks` | `mode`, `locktype`, `granted` (`true`/`false`) | `count` i64: rows in pg_locks (a combination seen before reports 0 when gone) |
//! | `activity` | — | `backends` i64: every backend; `client_backends` i64; `idle_in_transaction` i64: client sessions idle in a transaction (aborted ones too); `oldest_xact_s` f64; `oldest_query_s` f64: the longest-running active query |
//! | `activity` | `state` (`active`, `idle`, `idle_in_transaction`, `idle_in_transaction_aborted`, …), `wait_event_type` (`none`, `Lock`, `LWLock`, `IO`, `Client`, …) | `count` i64: client backends (0 when a combination seen before is gone) |
//! | `database` | `datname` | per-second rates, all f64: `xact_commit`, `xact_rollback`, `blks_read`, `blks_hit`, `tup_returned`, `tup_fetched`, `tup_inserted`, `tup_updated`, `tup_deleted`, `conflicts`, `temp_files`, `temp_bytes`, `deadlocks`. No point in the first cycle nor in the one after a restart or stats reset (no rate can be known) |
//! | `replication` | `slot`, `replication`, `subscriber` (`unknown` for slots prodhome did not make) | on the publisher: `active` i64 (0/1); `retained_bytes` i64: WAL kept for the slot; `lag_bytes` i64: WAL not yet confirmed by the subscriber; `confirmed_lag_s` f64: age of the oldest heartbeat not yet confirmed (publishers of a lab replication only); `write_lag_s`, `flush_lag_s`, `replay_lag_s` f64 from pg_stat_replication (while a walsender runs; 0 when idle and caught up) |
//! | `replication` | `subscription` | on the subscriber: `workers` i64; `apply_running` i64 (0/1); `apply_errors`, `sync_errors` i64 (counters from pg_stat_subscription_stats); `last_msg_age_s` f64: since the last message from the publisher (while a worker runs) |
//! | `replication` | `replication`, `publisher` | on the subscriber: `heartbeat_age_s` f64: age of the newest heartbeat row that arrived (end-to-end lag, ± one interval) |
//! | `process` | — | `cpu_percent` f64: CPU of the node's process tree, per core (not in the first cycle); `rss_bytes` i64: RSS summed over the tree (counts shared memory once per process); `pss_bytes` i64: PSS summed (shared memory shared out; read every 10 s, so only in those cycles' points, and only when /proc allows it); `processes` i64 |
//! | *custom query name* | `node` plus the query's `tags` columns | the query's `fields` columns, all f64 |
//! | `sample_errors` | `collector` (`locks`, …, a custom query's name, `connect`, `cycle` when the node's deadline passed) | `count` i64: always 1, one point per failure; `message` string |
//! | `sampler` | — | `duration_s` f64: how long the node's cycle took; `errors` i64: collectors that failed in it; `skipped_ticks` i64: ticks skipped because a cycle overran, since start |
//!
//! The heartbeat: in each cycle the sampler inserts a row into
//! `prodhome.probe` on every publisher, one per replication (the lab
//! replicates that table in every publication), and deletes its own rows
//! older than ten minutes once a minute.

mod collectors;
mod failure;
mod node;
pub mod rates;
mod schedule;
mod session;

/// The `database` measurement's fields: one per-second rate per pg_stat_database counter.
pub use collectors::database::COUNTERS as DATABASE_COUNTERS;
pub use schedule::run;
pub use session::APPLICATION_NAME;

use std::fmt;
use std::time::Duration;

use model::{Event, Point, Secret};

use node::NodeSampler;

/// One Postgres node to sample.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Empty for trust authentication.
    pub password: Secret,
    pub dbname: String,
    /// The postmaster's pid, used only while the node cannot be queried:
    /// otherwise the sampler finds it itself (the parent of its own
    /// backend), so it stays right across restarts.
    pub postmaster_pid: Option<u32>,
}

/// One logical replication of the lab.
#[derive(Debug, Clone)]
pub struct ReplicationTarget {
    /// The publication's name (also the replication's in the lab file).
    pub name: String,
    /// The publisher node's name.
    pub publisher: String,
    /// The subscriber nodes' names; each subscription (and its slot) is
    /// named `<name>_<subscriber>`.
    pub subscribers: Vec<String>,
}

/// A query from the lab file's `[[sample.query]]`.
#[derive(Debug, Clone)]
pub struct CustomQuery {
    /// The measurement's name.
    pub name: String,
    /// The nodes to run it on; empty means every node.
    pub nodes: Vec<String>,
    pub sql: String,
    /// Columns that become tags.
    pub tags: Vec<String>,
    /// Columns that become fields (numbers; stored as f64).
    pub fields: Vec<String>,
}

/// Everything the sampler needs.
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    pub interval: Duration,
    pub nodes: Vec<NodeTarget>,
    pub replications: Vec<ReplicationTarget>,
    pub custom: Vec<CustomQuery>,
    /// Limit for every statement and lock wait of the sampler's sessions.
    /// A node's whole cycle (connecting included) gets
    /// max(interval, 2 x statement_timeout) before it is abandoned.
    pub statement_timeout: Duration,
}

impl SamplerOptions {
    /// How long one node's cycle may take.
    pub fn deadline(&self) -> Duration {
        self.interval.max(self.statement_timeout * 2)
    }
}

/// Built-in measurement names, which a custom query may not take.
pub const MEASUREMENTS: &[&str] = &[
    "locks",
    "activity",
    "database",
    "replication",
    "process",
    "sample_errors",
    "sampler",
];

/// Options that cannot work, said plainly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

fn check(opts: &SamplerOptions) -> Result<(), Error> {
    let fail = |message: String| Err(Error { message });
    if opts.interval.is_zero() {
        return fail("the sample interval must be above zero; write e.g. interval = \"1s\"".into());
    }
    let names: Vec<&str> = opts.nodes.iter().map(|n| n.name.as_str()).collect();
    for q in &opts.custom {
        if MEASUREMENTS.contains(&q.name.as_str()) {
            return fail(format!(
                "custom query `{}` has the name of a built-in measurement; built-in are {}",
                q.name,
                MEASUREMENTS.join(", ")
            ));
        }
        if q.fields.is_empty() {
            return fail(format!("custom query `{}` names no field columns", q.name));
        }
        if q.tags.iter().any(|t| t == "node") {
            return fail(format!(
                "custom query `{}` uses `node` as a tag column; the sampler sets that tag itself",
                q.name
            ));
        }
        if let Some(n) = q.nodes.iter().find(|n| !names.contains(&n.as_str())) {
            return fail(format!(
                "custom query `{}` runs on node `{n}`, which is not sampled; nodes are {}",
                q.name,
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// The sampler driven one cycle at a time (tests, benchmarks). [`run`]
/// drives the same per-node samplers, each on its own tick.
pub struct Sampler {
    nodes: Vec<NodeSampler>,
}

impl Sampler {
    /// Checks the options; connects lazily, in the first cycle.
    pub fn new(opts: SamplerOptions) -> Result<Sampler, Error> {
        check(&opts)?;
        let deadline = opts.deadline();
        let nodes = opts
            .nodes
            .into_iter()
            .map(|n| {
                NodeSampler::new(
                    n,
                    &opts.replications,
                    &opts.custom,
                    opts.statement_timeout,
                    deadline,
                )
            })
            .collect();
        Ok(Sampler { nodes })
    }

    /// One cycle of every collector on every node, concurrently.
    pub async fn sample_once(&mut self) -> Vec<Point> {
        let ts_ns = model::now_ns();
        let cycles = futures_util::future::join_all(self.nodes.iter_mut().map(|n| n.sample(ts_ns))).await;
        cycles.into_iter().flat_map(|c| c.points).collect()
    }

    /// Events since the last call (collectors that started failing).
    pub fn take_events(&mut self) -> Vec<Event> {
        self.nodes.iter_mut().flat_map(|n| n.take_events()).collect()
    }
}
