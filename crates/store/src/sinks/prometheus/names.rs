//! What each sampled field is called in Prometheus, what type it has and
//! what its HELP says: one table, so the exposition follows Prometheus's
//! naming conventions (base units in the name — `_seconds`, `_bytes`,
//! `_ratio` — values converted to them, `_total` on counters and only on
//! counters, no `_count` on a gauge) and passes `promtool check metrics`.
//!
//! The fields are the sampler's and hum's (see the sampler crate's docs);
//! the Grafana export asks [`series`] for the same names. A field not in
//! the table (a lab's `[[sample.query]]`) becomes the gauge
//! `prodhome_<measurement>_<field>`; its name is the lab's to choose well.

/// How a field's values become a Prometheus series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The latest value.
    Gauge,
    /// The latest value of something counted since start (never falls
    /// but on a reset).
    Counter,
    /// Each point is one more occurrence: the exposition sums them.
    Increments,
}

impl Kind {
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter | Kind::Increments => "counter",
        }
    }
}

/// One field's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub kind: Kind,
    /// The stored value divided by this is the exposed one (1000 turns
    /// milliseconds into seconds); a query wanting the stored unit back
    /// multiplies by it.
    pub divide_by: f64,
    pub help: String,
}

use Kind::{Counter, Gauge, Increments};

const MS: f64 = 1000.0;
const PERCENT: f64 = 100.0;

/// (measurement, field, name, kind, divide_by, help).
type Row = (&'static str, &'static str, &'static str, Kind, f64, &'static str);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    ("locks", "waiting", "prodhome_locks_waiting", Gauge, 1.0, "Backends waiting for a lock."),
    ("locks", "blocked", "prodhome_locks_blocked", Gauge, 1.0, "Backends that pg_blocking_pids says are blocked."),
    ("locks", "oldest_wait_s", "prodhome_locks_oldest_wait_seconds", Gauge, 1.0, "How long the longest current lock wait has lasted."),
    ("locks", "longest_chain", "prodhome_locks_longest_chain", Gauge, 1.0, "The longest chain of lock waits (A waits for B waits for C is 2)."),
    ("locks", "count", "prodhome_locks", Gauge, 1.0, "Rows in pg_locks by mode, lock type and whether granted."),
    ("activity", "backends", "prodhome_activity_backends", Gauge, 1.0, "Backends of every kind."),
    ("activity", "client_backends", "prodhome_activity_client_backends", Gauge, 1.0, "Client backends."),
    ("activity", "idle_in_transaction", "prodhome_activity_idle_in_transaction", Gauge, 1.0, "Client sessions idle in a transaction (aborted ones too)."),
    ("activity", "oldest_xact_s", "prodhome_activity_oldest_xact_seconds", Gauge, 1.0, "Age of the oldest open transaction."),
    ("activity", "oldest_query_s", "prodhome_activity_oldest_query_seconds", Gauge, 1.0, "How long the longest-running active query has run."),
    ("activity", "count", "prodhome_activity_sessions", Gauge, 1.0, "Client backends by state and wait event type."),
    ("replication", "active", "prodhome_replication_slot_active", Gauge, 1.0, "1 while the replication slot has a walsender, else 0 (publisher)."),
    ("replication", "retained_bytes", "prodhome_replication_retained_bytes", Gauge, 1.0, "WAL the publisher keeps for the slot."),
    ("replication", "lag_bytes", "prodhome_replication_lag_bytes", Gauge, 1.0, "WAL the subscriber has not confirmed yet (publisher)."),
    ("replication", "confirmed_lag_s", "prodhome_replication_confirmed_lag_seconds", Gauge, 1.0, "Age of the oldest heartbeat the slot has not confirmed (publisher)."),
    ("replication", "write_lag_s", "prodhome_replication_write_lag_seconds", Gauge, 1.0, "write_lag from pg_stat_replication (publisher)."),
    ("replication", "flush_lag_s", "prodhome_replication_flush_lag_seconds", Gauge, 1.0, "flush_lag from pg_stat_replication (publisher)."),
    ("replication", "replay_lag_s", "prodhome_replication_replay_lag_seconds", Gauge, 1.0, "replay_lag from pg_stat_replication (publisher)."),
    ("replication", "workers", "prodhome_replication_workers", Gauge, 1.0, "Subscription workers running (subscriber)."),
    ("replication", "apply_running", "prodhome_replication_apply_running", Gauge, 1.0, "1 while the subscription's apply worker runs, else 0 (subscriber)."),
    ("replication", "apply_errors", "prodhome_replication_apply_errors_total", Counter, 1.0, "Apply errors of the subscription, from pg_stat_subscription_stats."),
    ("replication", "sync_errors", "prodhome_replication_sync_errors_total", Counter, 1.0, "Table sync errors of the subscription, from pg_stat_subscription_stats."),
    ("replication", "last_msg_age_s", "prodhome_replication_last_msg_age_seconds", Gauge, 1.0, "Time since the subscription's last message from the publisher."),
    ("replication", "heartbeat_age_s", "prodhome_replication_heartbeat_age_seconds", Gauge, 1.0, "Age of the newest heartbeat row that reached the subscriber (end-to-end lag)."),
    ("process", "cpu_percent", "prodhome_process_cpu_ratio", Gauge, PERCENT, "CPU used by the node's process tree, in cores (1 is one core busy)."),
    ("process", "rss_bytes", "prodhome_process_rss_bytes", Gauge, 1.0, "Resident memory summed over the node's process tree (shared memory once per process)."),
    ("process", "pss_bytes", "prodhome_process_pss_bytes", Gauge, 1.0, "Proportional set size summed over the node's process tree."),
    ("process", "processes", "prodhome_process_processes", Gauge, 1.0, "Processes in the node's process tree (0 when it is down)."),
    ("sample_errors", "count", "prodhome_sample_errors_total", Increments, 1.0, "Collector runs that failed, by collector."),
    ("sampler", "duration_s", "prodhome_sampler_duration_seconds", Gauge, 1.0, "How long the node's last sampling cycle took."),
    ("sampler", "errors", "prodhome_sampler_errors", Gauge, 1.0, "Collectors that failed in the node's last sampling cycle."),
    ("sampler", "skipped_ticks", "prodhome_sampler_skipped_ticks_total", Counter, 1.0, "Sampling ticks skipped because a cycle overran."),
    ("pg_statements", "calls", "prodhome_pg_statements_calls_total", Counter, 1.0, "Calls of one of the top statements by total time, from pg_stat_statements."),
    ("pg_statements", "rows", "prodhome_pg_statements_rows_total", Counter, 1.0, "Rows returned or affected by one of the top statements, from pg_stat_statements."),
    ("pg_statements", "total_ms", "prodhome_pg_statements_exec_seconds_total", Counter, MS, "Execution time spent in one of the top statements, from pg_stat_statements."),
    ("pg_statements", "mean_ms", "prodhome_pg_statements_mean_exec_seconds", Gauge, MS, "Mean execution time of one of the top statements, from pg_stat_statements."),
    ("hum", "tps", "prodhome_hum_transactions_per_second", Gauge, 1.0, "Transactions per second hum committed over the last second."),
    ("hum", "latency_p50_ms", "prodhome_hum_latency_p50_seconds", Gauge, MS, "Median transaction latency over the last second, from the scheduled start."),
    ("hum", "latency_p99_ms", "prodhome_hum_latency_p99_seconds", Gauge, MS, "99th percentile transaction latency over the last second, from the scheduled start."),
    ("hum", "latency_max_ms", "prodhome_hum_latency_max_seconds", Gauge, MS, "Longest transaction latency over the last second (in-flight ones too)."),
    ("hum", "transactions", "prodhome_hum_transactions_total", Counter, 1.0, "Transactions hum committed."),
    ("hum", "errors", "prodhome_hum_errors_total", Counter, 1.0, "Transactions hum saw fail."),
    ("hum", "reconnects", "prodhome_hum_reconnects_total", Counter, 1.0, "Times hum's clients connected again."),
    ("store", "written", "prodhome_store_written_total", Counter, 1.0, "Points and events the sink wrote."),
    ("store", "dropped", "prodhome_store_dropped_total", Counter, 1.0, "Points and events dropped because the sink's queue was full."),
    ("store", "failed", "prodhome_store_failed_total", Counter, 1.0, "Points and events the sink gave up on after failed writes."),
    ("store", "queued", "prodhome_store_queued", Gauge, 1.0, "Points and events waiting in the sink's queue."),
    // pglog: per-interval deltas of what the nodes' logs said.
    ("pg_log", "count", "prodhome_pg_log_messages_total", Increments, 1.0, "Messages the node logged, by severity and SQLSTATE."),
    ("pg_deadlocks", "count", "prodhome_pg_deadlocks_total", Increments, 1.0, "Deadlocks the node logged."),
    ("pg_lock_waits", "count", "prodhome_pg_lock_waits_total", Increments, 1.0, "Lock waits longer than deadlock_timeout the node logged."),
    ("pg_lock_waits", "max_wait_ms", "prodhome_pg_lock_waits_max_wait_seconds", Gauge, MS, "The longest lock wait logged in the last interval."),
    ("pg_checkpoints", "count", "prodhome_pg_checkpoints_total", Increments, 1.0, "Checkpoints the node completed (from its log)."),
    ("pg_checkpoints", "write_ms", "prodhome_pg_checkpoints_write_seconds_total", Increments, MS, "Time checkpoints spent writing buffers."),
    ("pg_checkpoints", "sync_ms", "prodhome_pg_checkpoints_sync_seconds_total", Increments, MS, "Time checkpoints spent syncing files."),
    ("pg_checkpoints", "buffers", "prodhome_pg_checkpoints_buffers_total", Increments, 1.0, "Buffers checkpoints wrote."),
    ("pg_autovacuum", "count", "prodhome_pg_autovacuum_runs_total", Increments, 1.0, "Autovacuum and autoanalyze runs logged, by table."),
    ("pg_autovacuum", "duration_ms", "prodhome_pg_autovacuum_seconds_total", Increments, MS, "Time autovacuum and autoanalyze runs took, by table."),
    ("pg_connection_failures", "count", "prodhome_pg_connection_failures_total", Increments, 1.0, "Connections refused, by kind (auth, other)."),
    ("pg_slow_statements", "count", "prodhome_pg_slow_statements_total", Increments, 1.0, "Statements over log_min_duration_statement, by normalised query hash."),
    ("pg_slow_statements", "total_ms", "prodhome_pg_slow_statements_seconds_total", Increments, MS, "Time slow statements took, by normalised query hash."),
    ("pg_slow_statements", "max_ms", "prodhome_pg_slow_statements_max_seconds", Gauge, MS, "The slowest statement of the query in the last interval."),
    ("pg_replication_workers", "errors", "prodhome_pg_replication_worker_errors_total", Increments, 1.0, "Errors logical replication workers logged."),
    ("pg_replication_workers", "starts", "prodhome_pg_replication_worker_starts_total", Increments, 1.0, "Logical replication worker starts logged."),
    ("pg_log_dropped", "count", "prodhome_pg_log_dropped_total", Increments, 1.0, "Log lines the reader dropped because it was behind."),
    ("pg_log_dropped", "events", "prodhome_pg_log_dropped_events_total", Increments, 1.0, "Log events dropped because the event log's queue was full."),
    ("service_log_lines", "count", "prodhome_service_log_lines_total", Increments, 1.0, "Lines the service printed, by level (unknown: none recognised)."),
    ("service_log_dropped", "count", "prodhome_service_log_dropped_total", Increments, 1.0, "Service output lines left uncounted because the counter was behind."),
];

/// The `database` measurement's fields are per-second rates of
/// pg_stat_database's counters: `<field>_per_second`.
fn database_rate(field: &str) -> Series {
    let mut name = String::from("prodhome_database_");
    sanitize(field, &mut name);
    name.push_str("_per_second");
    Series {
        name,
        kind: Gauge,
        divide_by: 1.0,
        help: format!("pg_stat_database.{field} per second, over the last sampling interval."),
    }
}

/// The series for `field` of `measurement`.
pub fn series(measurement: &str, field: &str) -> Series {
    if let Some((.., name, kind, divide_by, help)) = TABLE.iter().find(|r| r.0 == measurement && r.1 == field)
    {
        return Series {
            name: name.to_string(),
            kind: *kind,
            divide_by: *divide_by,
            help: help.to_string(),
        };
    }
    if measurement == "database" {
        return database_rate(field);
    }
    let mut name = String::from("prodhome_");
    sanitize(measurement, &mut name);
    name.push('_');
    sanitize(field, &mut name);
    Series {
        name,
        kind: Gauge,
        divide_by: 1.0,
        help: format!(
            "Field {field} of measurement {measurement} (a lab query's column or another producer's), latest sample."
        ),
    }
}

/// Characters Prometheus does not allow in a name become `_`.
pub(crate) fn sanitize(text: &str, out: &mut String) {
    for c in text.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_base_units_counters_end_in_total_and_gauges_do_not() {
        for (m, f, name, kind, divide_by, help) in TABLE {
            let s = series(m, f);
            assert_eq!((&s.name[..], s.kind, s.divide_by), (*name, *kind, *divide_by));
            assert!(help.ends_with('.'), "{name}: {help}");
            assert_eq!(name.ends_with("_total"), *kind != Gauge, "{name}");
            for bad in ["_s", "_ms", "_count", "_percent"] {
                assert!(
                    !name.ends_with(bad) && !name.contains(&format!("{bad}_")),
                    "{name}"
                );
            }
        }
        assert_eq!(series("hum", "latency_p99_ms").divide_by, 1000.0);
        assert_eq!(
            series("database", "xact_commit").name,
            "prodhome_database_xact_commit_per_second"
        );
        assert_eq!(series("my-q", "a.b").name, "prodhome_my_q_a_b");
    }
}
