//! The state directory: everything a lab owns, in one place.
//!
//! ```text
//! <state>/prodhome-state.json  marks the directory as ours (down --purge checks it)
//! <state>/daemon.json          the running daemon's pid and API address
//! <state>/daemon.lock          flock held by the daemon: one daemon per lab
//! <state>/daemon.log           the detached daemon's own output
//! <state>/events.jsonl         append-only event log
//! <state>/secrets.json         generated passwords, mode 0600
//! <state>/ports.json           the ports chosen for nodes and proxy links, kept across runs
//! <state>/hum.ledger           acknowledged writes of the lab's hum
//! <state>/metrics.db           the embedded metrics store (SQLite, WAL mode)
//! <state>/nodes/NAME/data      the cluster
//! <state>/nodes/NAME/run       its unix socket
//! <state>/logs/NAME.log        its server log
//! ```

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use api::DaemonInfo;

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

    /// True when the directory was made by prodhome.
    pub fn is_ours(&self) -> bool {
        self.root.join(MARKER).is_file()
    }

    /// Creates the directory tree. The root is 0711: the server account may
    /// pass through to its own node directory but list nothing.
    pub fn create(&self, lab: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o711))?;
        std::fs::create_dir_all(self.logs_dir())?;
        std::fs::create_dir_all(self.nodes_dir())?;
        std::fs::set_permissions(self.nodes_dir(), std::fs::Permissions::from_mode(0o711))?;
        if !self.is_ours() {
            let marker = serde_json::json!({ "lab": lab });
            write_atomic(&self.root.join(MARKER), marker.to_string().as_bytes(), 0o644)?;
        }
        Ok(())
    }

    /// The running daemon: `daemon.json` tells where it is, and its lock
    /// on `daemon.lock` tells that it is alive (a killed daemon's lock is
    /// released by the kernel, whatever is left on disk).
    pub fn running_daemon(&self) -> Option<DaemonInfo> {
        let text = std::fs::read_to_string(self.daemon_json()).ok()?;
        let info: DaemonInfo = serde_json::from_str(&text).ok()?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.lock_file())
            .ok()?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(_unlocked_on_drop) => None,
            Err(_) => Some(info),
        }
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

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader (or a crash) never sees half a file; `mode` is set at creation so
/// a secret is never readable by others, not even for a moment.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
