//! The checked, resolved lab: what the daemon builds. Produced only by
//! `check`; every name in it refers to something that exists.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Where the nodes run: host processes (the default) or containers.
    pub backend: Backend,
    /// Where `backend` was written, for errors about the engine.
    pub backend_at: Option<Location>,
    /// Unix account to run servers as when prodhome runs as root.
    pub run_as: Option<String>,
    /// Fixed port for the daemon's control API; a free one when `None`.
    pub api_port: Option<u16>,
    /// Postgres nodes, in the order the lab file lists them.
    pub nodes: Vec<NodePlan>,
    /// Replications, in the order the lab file lists them.
    pub replications: Vec<ReplicationPlan>,
    /// The top-level `seed`: what hum and chaos draw from unless they say
    /// otherwise (default 1), so a whole run is reproducible.
    pub seed: u64,
    /// `[[chaos]]` scenarios, in file order.
    pub chaos: Vec<chaos::Scenario>,
    /// `[service.NAME]`s, in file order.
    pub services: Vec<ServicePlan>,
    /// `[secret.NAME]`s, in file order.
    pub secrets: Vec<SecretPlan>,
    /// `[alert]`, if any.
    pub alert: Option<AlertPlan>,
    /// `[hum]`: background traffic `up` starts, if any.
    pub hum: Option<HumPlan>,
    /// `[data.TABLE]` sections: rows and column generators for `data fill`.
    pub data: Vec<DataPlan>,
    /// `[sample]`: sampling is always on; these are its settings (defaults
    /// when the section is absent: every 1 s into the embedded store).
    pub sample: SamplePlan,
    /// Hex SHA-256 of the lab file's bytes followed by every schema file's
    /// bytes (then the hum script's, if any): the daemon compares it to tell that a lab changed under it.
    pub fingerprint: String,
}

/// The top-level `backend`: how the lab's nodes run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// Each node a process on this host, supervised by the daemon.
    #[default]
    Native,
    /// Each node in its own container on the lab's private Docker network.
    Docker,
}

impl Backend {
    /// Every backend's name as the lab file and `--backend` write it.
    pub const NAMES: &[&str] = &["native", "docker"];

    /// The backend called `name` in a lab file or on the command line.
    pub fn from_name(name: &str) -> Option<Backend> {
        match name {
            "native" => Some(Backend::Native),
            "docker" => Some(Backend::Docker),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Docker => "docker",
        }
    }
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
    /// Where each of `settings` was written, in the same order: for the
    /// pre-start check that asks the server binary which settings exist.
    pub settings_at: Vec<SettingAt>,
    /// `host`: the machine an exported lab (`prodhome export stack|k8s`)
    /// places this node on; `None` lets the engine choose. The native and
    /// Docker backends run every node on this machine and ignore it.
    pub host: Option<String>,
}

/// Where one `settings` entry was written: its name and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingAt {
    pub key: Location,
    pub value: Location,
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
    /// What happens to DDL run on the publisher.
    pub ddl: Ddl,
}

/// `ddl = "follow"` (default) or `"manual"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ddl {
    /// DDL run on the publisher by any client is applied on every subscriber.
    #[default]
    Follow,
    /// Subscribers are left alone: the user applies DDL to them.
    Manual,
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

    /// The port `prodhome controller` carries replication path `index` (in
    /// [`Plan::replication_paths`] order) on: the ports right after its
    /// API's `api_port`. The export (which declares them) and the
    /// controller (which listens on them) agree through this.
    pub fn controller_link_port(api_port: u16, index: usize) -> u16 {
        api_port + 1 + index as u16
    }

    /// Every replication path (publisher, subscriber) once, in the lab
    /// file's order: two replications between the same nodes share one
    /// path (and one proxy link).
    pub fn replication_paths(&self) -> Vec<(String, String)> {
        let mut paths: Vec<(String, String)> = Vec::new();
        for r in &self.replications {
            for s in &r.subscribers {
                let path = (r.publisher.clone(), s.clone());
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        paths
    }
}

/// `[hum]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HumPlan {
    /// The node the writes go to.
    pub node: String,
    pub workload: HumWorkload,
    pub clients: u32,
    /// Transactions per second (open loop); `None` for "max" (closed loop).
    pub rate: Option<f64>,
    /// TPC-B scale factor.
    pub scale: u32,
    /// Nodes the `books` workload's reads go to (read replicas); empty means
    /// the write node.
    pub read_from: Vec<String>,
    pub seed: u64,
    /// Share of transactions that hold row locks on hot rows for a while.
    pub long_transactions: f64,
    /// Share of transactions after which the client drops its connection.
    pub disconnects: f64,
    /// Random rate spikes.
    pub spikes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HumWorkload {
    Tpcb,
    Books,
    /// A pgbench-syntax script, already read.
    Script {
        path: PathBuf,
        text: String,
    },
}

/// `[sample]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePlan {
    pub interval: Duration,
    /// How long the embedded store keeps points.
    pub retention: Duration,
    pub embedded: bool,
    pub prometheus: bool,
    pub influx: Option<InfluxPlan>,
    pub queries: Vec<QueryPlan>,
}

impl Default for SamplePlan {
    fn default() -> Self {
        SamplePlan {
            interval: Duration::from_secs(1),
            retention: Duration::from_secs(24 * 3600),
            embedded: true,
            prometheus: false,
            influx: None,
            queries: Vec::new(),
        }
    }
}

/// Where the influx sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfluxPlan {
    V1 {
        url: String,
        db: String,
        /// `CREATE DATABASE` when it is missing (as Telegraf does).
        create_database: bool,
    },
    /// The token is read from the environment variable `token_env` when
    /// `up` starts, so it never sits in the lab file.
    V2 {
        url: String,
        org: String,
        bucket: String,
        token_env: String,
    },
}

/// One `[[sample.query]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPlan {
    pub name: String,
    /// The nodes it runs on; every node when the lab lists none.
    pub nodes: Vec<String>,
    pub sql: String,
    /// Result columns that become tags.
    pub tags: Vec<String>,
    /// Result columns that become fields (numbers).
    pub fields: Vec<String>,
}

/// One `[service.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub name: String,
    /// argv; the program is found on PATH or relative to `workdir`. Empty
    /// only for a service run from an `image` with its own command.
    pub command: Vec<String>,
    /// Where `command` was written (or `image`, when it has none), for
    /// "no such program" errors.
    pub command_at: Location,
    /// Values may hold references, resolved when `up` starts the service:
    /// `${postgres.NODE.url|host|port|user|password|database}`, `${secret.NAME}`.
    pub env: Vec<(String, String)>,
    /// Absolute; the lab file's directory by default.
    pub workdir: PathBuf,
    /// (node or service, condition), in file order.
    pub depends_on: Vec<(String, DependsOn)>,
    pub ready: Option<ProbePlan>,
    pub live: Option<ProbePlan>,
    pub restart: RestartPlan,
    /// Consecutive failed restarts before it counts as a crash loop.
    pub max_restarts: u32,
    /// e.g. `SIGTERM`.
    pub stop_signal: String,
    pub stop_timeout: Duration,
    /// How the service's output lines tell their level: a regex with a
    /// `level` group (checked to compile and to have the group); `None`
    /// reads JSON lines' `level`/`lvl`/`severity`/`log.level` field.
    pub log_level: Option<String>,
    /// Natively, or in a container of a docker lab.
    pub run: ServiceRun,
}

/// Where a service runs. A container joins the lab's network and reaches
/// nodes there; it is only possible in a docker lab (checked before `up`
/// starts anything, against the backend it runs with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceRun {
    /// A process on this machine under the supervisor (the default).
    Native,
    /// `image = "REF"`: an image the engine already has (no registry is
    /// used); `command`, when given, replaces the image's own.
    Image { reference: String, at: Location },
    /// `container = true`: `command[0]` (a host executable) packed with its
    /// libraries and a static busybox into an image of its own.
    Packed { at: Location },
}

impl ServiceRun {
    /// Where the key that put the service in a container is written.
    pub fn at(&self) -> Option<&Location> {
        match self {
            ServiceRun::Native => None,
            ServiceRun::Image { at, .. } | ServiceRun::Packed { at } => Some(at),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependsOn {
    Started,
    Ready,
    Healthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPlan {
    No,
    OnFailure,
    Always,
}

/// A readiness or liveness probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    pub check: ProbeCheckPlan,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row before acting (successes in a row to be ready).
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCheckPlan {
    Tcp(u16),
    Http(String),
    Exec(Vec<String>),
}

/// One `[secret.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPlan {
    pub name: String,
    pub length: usize,
    /// The characters it is drawn from.
    pub alphabet: String,
}

/// `[alert]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPlan {
    pub command: Option<Vec<String>>,
    pub webhook: Option<String>,
    pub down_after: Duration,
    pub lag_bytes: Option<i64>,
    pub min_interval: Duration,
}

/// One `[data.TABLE]`: the table as the lab names it (`t` or `schema.t`,
/// resolved against the node by `data fill`), its rows, and generators for
/// some of its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPlan {
    pub table: String,
    pub rows: Option<u64>,
    /// In file order.
    pub columns: Vec<(String, DataGenerator)>,
}

/// A named column generator.
#[derive(Debug, Clone, PartialEq)]
pub enum DataGenerator {
    Email,
    Name,
    Lorem,
    /// Integers from the first to the second, inclusive.
    Range(i64, i64),
    /// One of `values`, drawn with `weights` (as many, not all zero).
    List {
        values: Vec<String>,
        weights: Vec<u32>,
    },
}
