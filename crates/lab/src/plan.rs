//! The checked, resolved lab: what the daemon builds. Produced only by
//! `check`; every name in it refers to something that exists.

use std::path::PathBuf;

use crate::Location;

/// A lab that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `name` from the lab file (a valid identifier).
    pub name: String,
    /// Where the lab came from: `Some(absolute path)` of the lab file, or
    /// `None` for the built-in seed lab.
    pub file: Option<PathBuf>,
    /// The directory relative paths (schema files) were resolved against.
    pub dir: PathBuf,
    /// The pinned Postgres major version (default 15).
    pub postgres_version: u32,
    /// Where `postgres_version` was written, for "wrong binaries" errors.
    pub postgres_version_at: Option<Location>,
    /// Unix account to run servers as when prodhome runs as root.
    pub run_as: Option<String>,
    /// Fixed port for the daemon's control API; a free one when `None`.
    pub api_port: Option<u16>,
    /// Postgres nodes, in the order the lab file lists them.
    pub nodes: Vec<NodePlan>,
    /// Replications, in the order the lab file lists them.
    pub replications: Vec<ReplicationPlan>,
    /// Hex SHA-256 of the lab file's bytes followed by every schema file's
    /// bytes: the daemon compares it to tell that a lab changed under it.
    pub fingerprint: String,
}

/// One `[postgres.NAME]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    /// `NAME` (a valid identifier, unique in the lab).
    pub name: String,
    /// The fixed port, or `None` to let `up` choose a free one.
    pub port: Option<u16>,
    /// Where `port` was written, for "port already in use" errors.
    pub port_at: Option<Location>,
    /// Extra postgresql.conf settings, in file order, as (name, value) where
    /// the value is already rendered for postgresql.conf: strings single-quoted
    /// with `'` doubled, numbers and booleans bare.
    pub settings: Vec<(String, String)>,
}

/// One `[replication.NAME]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationPlan {
    /// `NAME` (a valid identifier).
    pub name: String,
    /// The node whose tables are published; names a node in [`Plan::nodes`].
    pub publisher: String,
    /// At least one node, each in [`Plan::nodes`], none the publisher, no
    /// duplicates, in file order.
    pub subscribers: Vec<String>,
    /// The schema file, already read.
    pub schema: Option<SchemaFile>,
    pub tables: Tables,
}

/// A replication's `schema` file: SQL applied to its publisher and every
/// subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaFile {
    /// The path as written, joined to [`Plan::dir`].
    pub path: PathBuf,
    /// The file's contents.
    pub sql: String,
}

/// Which tables a publication carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tables {
    /// `tables = "all"` (or absent): `FOR ALL TABLES`.
    All,
    /// An explicit list of table names, possibly schema-qualified (`s.t`).
    List(Vec<String>),
}

impl Plan {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }
}
