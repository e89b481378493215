//! Everything prodhome knows about PostgreSQL: finding the pinned binaries,
//! creating clusters (with a template cache so a lab's second cluster is a
//! copy, not an initdb), writing their configuration, bootstrapping roles,
//! setting up logical replication, measuring lag, and verifying that
//! subscribers converged.
//!
//! Inputs are small specs ([`NodeSpec`], [`ReplicationSpec`]) that the daemon
//! builds from the lab's Plan; this crate never reads a lab file. It starts no
//! long-lived process itself: [`server_command`] says how to run a server and
//! the supervisor runs it. Connections are tokio-postgres: admin work goes
//! over the node's private unix socket with peer authentication (no password
//! on the wire or in a file the server reads), everything a user does goes
//! over TCP on 127.0.0.1 with scram-sha-256.

mod account;
mod binaries;
mod cluster;
mod conf;
mod connect;
mod copy;
pub mod ddl;
mod describe;
mod drift;
mod error;
mod identity;
mod initdb;
mod initial;
mod lag;
mod proof;
mod replication;
mod roles;
mod schema;
mod share;
mod spares;
mod staging;
mod sync;
mod synclog;
mod template;
mod verify;

pub use account::{Account, check_reachable};
pub use binaries::{Binaries, find_binaries};
pub use cluster::{ensure_clusters, postmaster_pid, server_command};
pub use conf::write_config;
pub use connect::{admin, kept_admin, probe, user};
pub use describe::{SettingInfo, SettingKind, SettingProblem, describe_config, judge_settings};
pub use drift::Drift;
pub use error::{Error, ErrorKind};
pub use lag::{LinkStatus, SLOTS, SlotRow, link_status};
pub use proof::{KeyDiff, LedgerCheck, SlotCheck, check_ledger, check_slots, key_diff};
pub use replication::{ReplicationSpec, setup_replication, subscription_name};
pub use roles::bootstrap;
pub use schema::SchemaSpec;
pub use share::{NewTables, Pending, Published, prepare_new_tables};
pub use spares::{MAX_SPARES, fill_spares};
pub use sync::SubscriberSpec;
pub use sync::{WorkerState, worker_state};
pub use synclog::{WorkerError, last_worker_error};
pub use verify::{TableCheck, TableSide, VerifyReport, verify};

use std::path::PathBuf;

use model::Secret;

/// The superuser every cluster is created with.
pub const SUPERUSER: &str = "postgres";

/// Where a node's server writes its logs (jsonlog, `*.json`, one file per
/// server start and rotation): `log_directory` in the node's
/// postgresql.conf (see `conf.rs`), inside the data directory so the
/// server's own account can write it.
pub fn server_log_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join(conf::LOG_DIRECTORY)
}
/// The least-privilege role subscriptions connect as.
pub const REPLICATION_ROLE: &str = "prodhome_repl";
/// The database the lab's schema lives in.
pub const DATABASE: &str = "postgres";

/// One Postgres node as this crate needs it.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    /// Extra postgresql.conf lines from the lab, already rendered.
    pub settings: Vec<(String, String)>,
    pub credentials: Credentials,
    /// The host name of a server this machine does not run (the
    /// controller's nodes, run by compose, Swarm or Kubernetes): every
    /// session, the admin one included, then goes over TCP to it with the
    /// superuser's password, since its unix socket is not here. `None`: a
    /// server on this machine, reached on 127.0.0.1 and its socket.
    pub remote: Option<String>,
}

impl NodeSpec {
    /// Where TCP sessions to the server go.
    pub fn tcp_host(&self) -> &str {
        self.remote.as_deref().unwrap_or("127.0.0.1")
    }
}

/// The node's generated passwords.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub superuser: Secret,
    pub replication: Secret,
}
