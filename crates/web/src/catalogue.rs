//! The panel catalogue: what the dashboard shows, in one list that both the
//! page ([`crate::router`]) and the Grafana export ([`crate::grafana`])
//! read, so the two cannot drift apart.
//!
//! Each [`Panel`] names the measurements and fields it reads (as the
//! sampler and hum write them: see the sampler crate's docs), the tags that
//! split it into series, and its unit.

use std::collections::BTreeSet;

use serde::Serialize;

/// How a panel draws its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    /// One line per series.
    Lines,
    /// Series stacked on each other (parts of a whole: locks by mode).
    Stacked,
    /// The latest value of each series as a horizontal bar, largest first
    /// (a ranking, not a history: top statements by total time).
    Bars,
    /// One row per node coloured by its state (ready, starting, down),
    /// drawn from the daemon's events and status; the queries are what
    /// Grafana draws instead, having no event log.
    Health,
}

/// The unit of a panel's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Transactions per second.
    PerSecond,
    Milliseconds,
    Seconds,
    Bytes,
    /// 100 is one core.
    Percent,
    /// A plain number of things (locks, backends, errors).
    Count,
    /// Health: a state, not a quantity.
    State,
}

impl Unit {
    /// Grafana's name for the unit (`fieldConfig.defaults.unit`).
    pub fn grafana(self) -> &'static str {
        match self {
            Unit::PerSecond => "ops",
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
            Unit::Bytes => "bytes",
            Unit::Percent => "percent",
            Unit::Count => "short",
            Unit::State => "none",
        }
    }
}

/// One measurement field read into a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Query {
    pub measurement: &'static str,
    pub field: &'static str,
    /// The tags that split the panel into series; values are summed over
    /// every other tag (locks by mode: summed over locktype and granted).
    pub by: &'static [&'static str],
    /// Only series whose tags have these values.
    pub only: &'static [(&'static str, &'static str)],
    /// What the legend puts before the tag values ("p99"); may be empty.
    pub alias: &'static str,
}

/// One panel of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Panel {
    /// Stable id: the page's `data-panel`, the Grafana panel's key.
    pub id: &'static str,
    pub title: &'static str,
    /// One sentence on what the panel shows and what to look for.
    pub help: &'static str,
    pub unit: Unit,
    pub chart: Chart,
    pub queries: &'static [Query],
    /// Drawn only when its series have data in the range: the container
    /// panels, whose measurement only a `backend = "docker"` lab writes,
    /// and services' log lines, which only a lab with services has.
    pub optional: bool,
}

const fn q(measurement: &'static str, field: &'static str, by: &'static [&'static str]) -> Query {
    Query {
        measurement,
        field,
        by,
        only: &[],
        alias: "",
    }
}

const fn aliased(query: Query, alias: &'static str) -> Query {
    Query { alias, ..query }
}

/// Every panel, in page order. Measurements and fields are the sampler's
/// (its crate docs list them) and hum's (`hum`: tps, latency percentiles).
pub const PANELS: &[Panel] = &[
    Panel {
        id: "health",
        title: "Node health",
        help: "Each node's state over time (ready, starting, down) from the supervisor's events; \
               crashes and restarts are marked. Grafana shows whether the node's processes run.",
        unit: Unit::State,
        chart: Chart::Health,
        queries: &[q("process", "processes", &["node"])],
        optional: false,
    },
    Panel {
        id: "hum_tps",
        title: "Hum throughput",
        help: "Transactions per second committed by the background traffic.",
        unit: Unit::PerSecond,
        chart: Chart::Lines,
        queries: &[q("hum", "tps", &["node", "workload"])],
        optional: false,
    },
    Panel {
        id: "hum_latency",
        title: "Hum latency",
        help: "Transaction latency from the scheduled start (open loop): a stall shows here.",
        unit: Unit::Milliseconds,
        chart: Chart::Lines,
        queries: &[
            aliased(q("hum", "latency_p50_ms", &["node"]), "p50"),
            aliased(q("hum", "latency_p99_ms", &["node"]), "p99"),
        ],
        optional: false,
    },
    Panel {
        id: "locks_by_mode",
        title: "Locks by mode",
        help: "Rows in pg_locks by lock mode (granted or awaited), stacked, per node.",
        unit: Unit::Count,
        chart: Chart::Stacked,
        queries: &[q("locks", "count", &["node", "mode"])],
        optional: false,
    },
    Panel {
        id: "lock_waits",
        title: "Lock waits",
        help: "Backends waiting for a lock, and those pg_blocking_pids says are blocked.",
        unit: Unit::Count,
        chart: Chart::Lines,
        queries: &[
            aliased(q("locks", "waiting", &["node"]), "waiting"),
            aliased(q("locks", "blocked", &["node"]), "blocked"),
        ],
        optional: false,
    },
    Panel {
        id: "lock_wait_age",
        title: "Oldest lock wait",
        help: "How long the longest-waiting backend has waited for its lock.",
        unit: Unit::Seconds,
        chart: Chart::Lines,
        queries: &[q("locks", "oldest_wait_s", &["node"])],
        optional: false,
    },
    Panel {
        id: "container_cpu",
        title: "CPU per container",
        help: "CPU each node's container used, from the Docker Engine's stats (100% is one \
               core); beside the locks, a lock pile-up that is really a CPU-starved container.",
        unit: Unit::Percent,
        chart: Chart::Lines,
        queries: &[q("container", "cpu_percent", &["node"])],
        optional: true,
    },
    Panel {
        id: "container_memory",
        title: "Memory per container",
        help: "Memory each node's container uses (page cache included, as the engine counts \
               it), and its limit.",
        unit: Unit::Bytes,
        chart: Chart::Lines,
        queries: &[
            aliased(q("container", "mem_bytes", &["node"]), "used"),
            aliased(q("container", "mem_limit_bytes", &["node"]), "limit"),
        ],
        optional: true,
    },
    Panel {
        id: "container_network",
        title: "Network per container",
        help: "Bytes each node's container received and sent since it started (the engine's \
               counters): replication and client traffic together.",
        unit: Unit::Bytes,
        chart: Chart::Lines,
        queries: &[
            aliased(q("container", "net_rx_bytes", &["node"]), "rx"),
            aliased(q("container", "net_tx_bytes", &["node"]), "tx"),
        ],
        optional: true,
    },
    Panel {
        id: "container_block_io",
        title: "Block I/O per container",
        help: "Bytes each node's container read from and wrote to disk since it started.",
        unit: Unit::Bytes,
        chart: Chart::Lines,
        queries: &[
            aliased(q("container", "blk_read_bytes", &["node"]), "read"),
            aliased(q("container", "blk_write_bytes", &["node"]), "write"),
        ],
        optional: true,
    },
    Panel {
        id: "top_statements",
        title: "Top statements by total time",
        help: "The statements with the most execution time since pg_stat_statements was reset, \
               per node, latest reading: which queries hold the locks charted beside.",
        unit: Unit::Milliseconds,
        chart: Chart::Bars,
        queries: &[q("pg_statements", "total_ms", &["node", "text"])],
        optional: false,
    },
    Panel {
        id: "log_errors",
        title: "Errors by SQLSTATE (log)",
        help: "ERRORs each node logged per sampling interval, by SQLSTATE (23505 unique \
               violation, 22012 division by zero, 40P01 deadlock, ...), read from its jsonlog.",
        unit: Unit::Count,
        chart: Chart::Lines,
        queries: &[Query {
            only: &[("severity", "ERROR")],
            ..q("pg_log", "count", &["node", "sqlstate"])
        }],
        optional: false,
    },
    Panel {
        id: "log_locks",
        title: "Deadlocks and logged lock waits",
        help: "Per sampling interval, from each node's log: deadlocks, and lock waits that \
               outlasted deadlock_timeout (log_lock_waits); beside the lock charts above.",
        unit: Unit::Count,
        chart: Chart::Lines,
        queries: &[
            aliased(q("pg_deadlocks", "count", &["node"]), "deadlocks"),
            aliased(q("pg_lock_waits", "count", &["node"]), "lock waits"),
        ],
        optional: false,
    },
    Panel {
        id: "slow_statements",
        title: "Slow statements (log)",
        help: "Time spent per sampling interval in statements over log_min_duration_statement, \
               by normalised query (its hash; the text is in the slow_statement events).",
        unit: Unit::Milliseconds,
        chart: Chart::Lines,
        queries: &[q("pg_slow_statements", "total_ms", &["node", "query"])],
        optional: false,
    },
    Panel {
        id: "checkpoints",
        title: "Checkpoints (log)",
        help: "Time checkpoints spent writing and syncing per sampling interval, from \
               log_checkpoints; a long sync is a slow disk.",
        unit: Unit::Milliseconds,
        chart: Chart::Lines,
        queries: &[
            aliased(q("pg_checkpoints", "write_ms", &["node"]), "write"),
            aliased(q("pg_checkpoints", "sync_ms", &["node"]), "sync"),
        ],
        optional: false,
    },
    Panel {
        id: "service_logs",
        title: "Service log lines by level",
        help: "Lines each app service printed per sampling interval, by level: from JSON lines' \
               level field, or the service's log_level regex; unknown when neither tells.",
        unit: Unit::Count,
        chart: Chart::Lines,
        queries: &[q("service_log_lines", "count", &["service", "level"])],
        optional: true,
    },
    Panel {
        id: "backends_by_state",
        title: "Backends by state",
        help: "Client backends by state (active, idle, idle in transaction), stacked, per node.",
        unit: Unit::Count,
        chart: Chart::Stacked,
        queries: &[q("activity", "count", &["node", "state"])],
        optional: false,
    },
    Panel {
        id: "backends_by_wait",
        title: "Backends by wait event",
        help: "Client backends by wait event type (none is on CPU; Lock, IO, Client, ...), stacked, per node.",
        unit: Unit::Count,
        chart: Chart::Stacked,
        queries: &[q("activity", "count", &["node", "wait_event_type"])],
        optional: false,
    },
    Panel {
        id: "replication_lag_bytes",
        title: "Replication lag (bytes)",
        help: "WAL the publisher has written that each subscriber has not confirmed yet.",
        unit: Unit::Bytes,
        chart: Chart::Lines,
        queries: &[q("replication", "lag_bytes", &["subscriber", "replication"])],
        optional: false,
    },
    Panel {
        id: "replication_lag_seconds",
        title: "Replication lag (seconds)",
        help: "Heartbeat: age of the newest heartbeat row each subscriber has (end to end); \
               unconfirmed: age of the oldest heartbeat its slot has not confirmed, seen from \
               the publisher (rises even when the link is cut).",
        unit: Unit::Seconds,
        chart: Chart::Lines,
        queries: &[
            aliased(q("replication", "heartbeat_age_s", &["node"]), "heartbeat"),
            aliased(
                q("replication", "confirmed_lag_s", &["subscriber"]),
                "unconfirmed",
            ),
        ],
        optional: false,
    },
    Panel {
        id: "retained_wal",
        title: "Retained WAL per slot",
        help: "WAL the publisher keeps for each replication slot; grows while a subscriber is away.",
        unit: Unit::Bytes,
        chart: Chart::Lines,
        queries: &[q("replication", "retained_bytes", &["slot"])],
        optional: false,
    },
    Panel {
        id: "cpu",
        title: "CPU per node",
        help: "CPU used by each node's process tree (100% is one core).",
        unit: Unit::Percent,
        chart: Chart::Lines,
        queries: &[q("process", "cpu_percent", &["node"])],
        optional: false,
    },
    Panel {
        id: "memory",
        title: "Memory per node",
        help: "Memory of each node's process tree: PSS shares shared memory out fairly; RSS \
               counts it once per process, so it overstates.",
        unit: Unit::Bytes,
        chart: Chart::Lines,
        queries: &[
            aliased(q("process", "pss_bytes", &["node"]), "pss"),
            aliased(q("process", "rss_bytes", &["node"]), "rss"),
        ],
        optional: false,
    },
    Panel {
        id: "sampler_errors",
        title: "Sampler errors",
        help: "Collectors that failed in each node's sampling cycle (a node down, a timeout); 0 when all is well.",
        unit: Unit::Count,
        chart: Chart::Lines,
        queries: &[q("sampler", "errors", &["node"])],
        optional: false,
    },
];

/// The panel with this id.
pub fn panel(id: &str) -> Option<&'static Panel> {
    PANELS.iter().find(|p| p.id == id)
}

/// Every measurement some panel reads.
pub fn measurements() -> BTreeSet<&'static str> {
    PANELS
        .iter()
        .flat_map(|p| p.queries.iter().map(|q| q.measurement))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_ids_are_unique_and_every_panel_reads_something() {
        let ids: BTreeSet<_> = PANELS.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), PANELS.len());
        for panel in PANELS {
            assert!(!panel.queries.is_empty(), "{} reads nothing", panel.id);
            assert!(
                panel.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                panel.id
            );
        }
        assert_eq!(panel("hum_tps").map(|p| p.unit), Some(Unit::PerSecond));
    }
}
