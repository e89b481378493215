//! What the sampler is told: the nodes, replications and custom queries to
//! sample, and the check that they can work. Below every other module, so
//! they import it and it imports none of them.

use std::fmt;
use std::time::Duration;

use model::Secret;

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
    /// Whether the server's processes are on this machine, where the
    /// process collector reads them from `/proc`. False for a server an
    /// engine runs elsewhere (the controller's nodes): no process stats,
    /// rather than an error every cycle.
    pub local: bool,
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
    "pg_statements",
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

pub(crate) fn check(opts: &SamplerOptions) -> Result<(), Error> {
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
