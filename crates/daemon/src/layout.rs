//! The state directory: everything a lab owns, in one place.
//!
//! ```text
//! <state>/                     0711: the server account passes through, lists nothing
//! <state>/prodhome-state.json  0644 marks the directory as ours (down --purge checks it)
//! <state>/daemon.json          0644 the running daemon's pid and API address
//! <state>/api.token            0600 the control API's bearer token, new on every daemon start
//! <state>/daemon.lock          0644 flock held by the daemon: one daemon per lab
//! <state>/daemon.log           0600 the detached daemon's own output
//! <state>/events.jsonl         0600 append-only event log
//! <state>/secrets.json         0600 generated passwords
//! <state>/ports.json           0644 the ports chosen for nodes and proxy links, kept across runs
//! <state>/hum.ledger           0600 acknowledged writes of the lab's hum (soak-*.ledger too)
//! <state>/metrics.db           0600 the embedded metrics store (SQLite, WAL mode; -wal/-shm alike)
//! <state>/nodes/               0711
//! <state>/nodes/NAME/          0700, owned by the server account: data (the cluster), run (its socket)
//! <state>/logs/                0700: NAME.log, every node's and service's output, 0600
//! <state>/pglog/               0700: NODE.json, where the log reader stopped in each node's jsonlog, 0600
//! ```
//!
//! Who may read what: the lab's data (events, metrics, ledgers, logs,
//! secrets) is the owner's alone — the account that runs `up`. Every one
//! of those files is written by the daemon (or the CLI) as the owner: a
//! server's output reaches `logs/` through the supervisor's pipe, never
//! written by the server account, so nothing there needs the server
//! account. That account only needs to pass through the root and `nodes/`
//! (0711) to its own directory. `daemon.json` stays world-readable: it
//! holds no secret, and tells any local account where the read-only
//! dashboard is; changing the lab takes `api.token`, which only the owner
//! can read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use api::DaemonInfo;
use model::Secret;

mod holder;

pub use holder::LockHolder;

/// Paths inside one lab's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

const MARKER: &str = "prodhome-state.json";

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The default: `.prodhome/<lab>` beside the lab file (or in `dir`).
    pub fn default_for(dir: &Path, lab: &str) -> Self {
        StateDir::new(dir.join(".prodhome").join(lab))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn daemon_json(&self) -> PathBuf {
        self.root.join("daemon.json")
    }
    /// The control API's token: whoever can read it may change the lab.
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api.token")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets.json")
    }
    pub fn ports(&self) -> PathBuf {
        self.root.join("ports.json")
    }
    /// Where a controller's nodes are (`crate::external`).
    pub fn external(&self) -> PathBuf {
        self.root.join("external.json")
    }
    /// The hum ledger: every write whose COMMIT was acknowledged.
    pub fn ledger(&self) -> PathBuf {
        self.root.join("hum.ledger")
    }
    /// The embedded metrics store (SQLite) the sampler writes and
    /// `prodhome metrics` reads.
    pub fn metrics_db(&self) -> PathBuf {
        self.root.join("metrics.db")
    }
    pub fn nodes_dir(&self) -> PathBuf {
        self.root.join("nodes")
    }
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.nodes_dir().join(node)
    }
    pub fn data_dir(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("data")
    }
    pub fn socket_dir(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("run")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn node_log(&self, node: &str) -> PathBuf {
        self.logs_dir().join(format!("{node}.log"))
    }
    /// The log reader's checkpoints (crates/pglog): one file per node.
    pub fn pglog_checkpoints(&self) -> PathBuf {
        self.root.join("pglog")
    }

    /// True when the directory was made by prodhome.
    pub fn is_ours(&self) -> bool {
        self.root.join(MARKER).is_file()
    }

    /// Creates the directory tree with the modes above, and narrows the
    /// modes of data files an older prodhome left readable by others.
    pub fn create(&self, lab: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o711))?;
        std::fs::create_dir_all(self.logs_dir())?;
        std::fs::set_permissions(self.logs_dir(), std::fs::Permissions::from_mode(0o700))?;
        std::fs::create_dir_all(self.nodes_dir())?;
        std::fs::set_permissions(self.nodes_dir(), std::fs::Permissions::from_mode(0o711))?;
        if !self.is_ours() {
            let marker = serde_json::json!({ "lab": lab });
            write_atomic(&self.root.join(MARKER), marker.to_string().as_bytes(), 0o644)?;
        }
        self.narrow_data_modes()
    }

    fn narrow_data_modes(&self) -> std::io::Result<()> {
        let private = |name: &std::ffi::OsStr| {
            let name = name.to_string_lossy();
            name.starts_with("metrics.db")
                || name.ends_with(".ledger")
                || matches!(&*name, "events.jsonl" | "daemon.log" | "secrets.json")
        };
        for entry in std::fs::read_dir(&self.root)?.flatten() {
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && private(&entry.file_name()) {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            }
        }
        for entry in std::fs::read_dir(self.logs_dir())?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            }
        }
        Ok(())
    }

    /// The running daemon: `daemon.json` tells where it is, and the lock
    /// on `daemon.lock` tells that it is alive. A daemon that was killed is
    /// not running, even while it still holds its lock for a moment or
    /// stays a zombie; nor is a stale `daemon.json` whose pid is not the
    /// lock's holder (a new daemon starting, not yet serving).
    pub fn running_daemon(&self) -> Option<DaemonInfo> {
        let text = std::fs::read_to_string(self.daemon_json()).ok()?;
        let info: DaemonInfo = serde_json::from_str(&text).ok()?;
        match self.lock_holder() {
            LockHolder::Alive(pid) if pid == info.pid || pid == 0 => Some(info),
            _ => None,
        }
    }

    /// Who holds `daemon.lock`, found without taking it (see [`LockHolder`]).
    pub fn lock_holder(&self) -> LockHolder {
        let recorded = std::fs::read_to_string(self.daemon_json())
            .ok()
            .and_then(|text| serde_json::from_str::<DaemonInfo>(&text).ok())
            .map(|info| info.pid);
        holder::lock_holder(&self.lock_file(), recorded)
    }

    /// The control API's token, as the running daemon wrote it.
    pub fn read_api_token(&self) -> std::io::Result<Secret> {
        let text = std::fs::read_to_string(self.api_token())?;
        Ok(Secret::new(text.trim()))
    }

    /// Names of the nodes that have a directory here.
    pub fn node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.nodes_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

pub use model::write_atomic;
