//! pglog: reads PostgreSQL's own logs (jsonlog) and turns them into series
//! and events — errors by severity and SQLSTATE, deadlocks with their
//! statements, lock waits with the blocker, checkpoints, autovacuum runs,
//! connection failures, replication worker errors and starts, slow
//! statements normalised.
//!
//! Data flow, top to bottom, no arrow back up: [`Follower`] (files →
//! lines, through rotation and restarts) → [`Record::parse`] (line →
//! record) → [`classify`] (record → [`Class`]) → [`Tally`] (classes →
//! per-interval [`model::Point`]s and rate-limited [`model::Event`]s) →
//! [`run`] (threads per node, a bounded queue between reading and
//! tallying, points to a [`model::PointSender`], events to a channel).
//! Where each node's reader is ([`Checkpoint`]) is saved after every
//! interval's points are written ([`Options::checkpoints`]), so a new
//! reader (a restarted daemon) goes on at the next line.
//!
//! # Measurements
//!
//! Every point has the tag `node`; points are **per-interval deltas**
//! (what was logged since the previous point of that series), handed over
//! once per interval; the Prometheus sink sums them into `_total`
//! counters. Times are f64 milliseconds, counts i64.
//!
//! | measurement | tags (besides `node`) | fields |
//! |---|---|---|
//! | `pg_log` | `severity`, `sqlstate` | `count` (only combinations seen in the interval) |
//! | `pg_deadlocks` | — | `count` |
//! | `pg_lock_waits` | — | `count` (waits past deadlock_timeout), `max_wait_ms` |
//! | `pg_checkpoints` | — | `count`, `write_ms`, `sync_ms`, `buffers` |
//! | `pg_autovacuum` | `table` | `count`, `duration_ms` |
//! | `pg_connection_failures` | `kind` (`auth`, `other`) | `count` |
//! | `pg_slow_statements` | `query` (12 hex digits of the normalised text's SHA-256) | `count`, `total_ms`, `max_ms` |
//! | `pg_replication_workers` | — | `errors`, `starts` |
//! | `pg_log_dropped` | — | `count`: lines the reader dropped because the tallier was behind; `events`: events dropped because the event log's queue was full |
//!
//! # App services' logs
//!
//! [`count_services`] counts the lines app services print by level
//! ([`LevelRule`]: JSON lines' level field, or the lab's regex), fed by the
//! supervisor's line tap; measurements `service_log_lines` {service, level}
//! and `service_log_dropped` {service} (see the `service` module).

/// Every measurement pglog writes.
pub const MEASUREMENTS: &[&str] = &[
    "pg_log",
    "pg_deadlocks",
    "pg_lock_waits",
    "pg_checkpoints",
    "pg_autovacuum",
    "pg_connection_failures",
    "pg_slow_statements",
    "pg_replication_workers",
    "pg_log_dropped",
    "service_log_lines",
    "service_log_dropped",
];

mod checkpoints;
mod classify;
mod follow;
mod level;
mod normalize;
mod record;
mod run;
mod service;
mod tally;

pub use classify::{Class, classify};
pub use follow::{Checkpoint, Follower};
pub use level::{Level, LevelRule};
pub use normalize::{normalize, query_hash};
pub use record::{ParseError, Record};
pub use run::{NodeLog, Options, Written, run};
pub use service::{LineTap, ServiceLog, ServiceTaps, count_services};
pub use tally::Tally;
