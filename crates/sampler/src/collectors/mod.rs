//! The collectors: each a named set of points read from one node. A
//! collector's name is its measurement's name (see the crate docs for every
//! tag and field). SQL collectors run concurrently on the node's one
//! session (tokio-postgres pipelines them); each keeps its own state
//! between cycles (previous counters, series seen before).

pub(crate) mod activity;
pub(crate) mod custom;
pub(crate) mod database;
pub(crate) mod locks;
pub(crate) mod process;
pub(crate) mod replication;
pub(crate) mod statements;

use model::Point;

/// What every collector needs to stamp its points.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) node: &'a str,
    pub(crate) ts_ns: i64,
}

impl Ctx<'_> {
    /// A point of `measurement` for this node and cycle.
    pub(crate) fn point(&self, measurement: &str) -> Point {
        Point::new(measurement, self.ts_ns).tag("node", self.node)
    }
}

/// Every prepared statement a session needs.
pub(crate) fn statements() -> Vec<&'static str> {
    [
        locks::STATEMENTS,
        activity::STATEMENTS,
        database::STATEMENTS,
        replication::STATEMENTS,
        process::STATEMENTS,
    ]
    .concat()
}

/// Seconds as f64 from a nullable interval read with `EXTRACT(epoch ...)`.
pub(crate) fn seconds(value: Option<f64>) -> f64 {
    value.unwrap_or(0.0).max(0.0)
}
