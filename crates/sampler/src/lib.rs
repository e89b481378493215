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
//! described as counters (`apply_errors`, `sync_errors`, `skipped_ticks`,
//! `pg_statements`' `calls`, `rows`, `total_ms`)
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
//! | `pg_statements` | `query` (12 hex digits of the queryid), `text` (the normalised statement, one line, cut to 120 characters) | the ten statements with the most total execution time, from pg_stat_statements (summed over users and databases; nothing on a node without the extension): `calls` i64, `rows` i64 and `total_ms` f64 are counters since the statistics' reset; `mean_ms` f64 |
//! | *custom query name* | `node` plus the query's `tags` columns | the query's `fields` columns, all f64 |
//! | `sample_errors` | `collector` (`locks`, …, a custom query's name, `connect`, `cycle` when the node's deadline passed) | `count` i64: always 1, one point per failure; `message` string |
//! | `sampler` | — | `duration_s` f64: how long the node's cycle took; `errors` i64: collectors that failed in it; `skipped_ticks` i64: ticks skipped because a cycle overran, since start |
//!
//! The heartbeat: in each cycle the sampler inserts a row into
//! `prodhome.probe` on every publisher, one per replication (the lab
//! replicates that table in every publication), and deletes its own rows
//! older than ten minutes once a minute.

mod collectors;
mod cycle;
mod failure;
mod node;
mod options;
pub mod rates;
mod schedule;
mod session;

/// The `database` measurement's fields: one per-second rate per pg_stat_database counter.
pub use collectors::database::COUNTERS as DATABASE_COUNTERS;
pub use cycle::Sampler;
pub use options::{CustomQuery, Error, MEASUREMENTS, NodeTarget, ReplicationTarget, SamplerOptions};
pub use schedule::run;
pub use session::APPLICATION_NAME;
