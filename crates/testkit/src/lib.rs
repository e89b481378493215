//! Dev-only helpers for prodhome's integration tests: a [`TestLab`] that runs
//! the real `prodhome` binary against real Postgres in a private temporary
//! directory, and cleans up every process it caused on `Drop` — also when
//! the test panics. Plus [`poll`] (wait for a condition with a deadline, never
//! a fixed sleep), [`free_port`], and [`http_get`]/[`http_post`] (reqwest,
//! from sync or async tests). [`PgNode`] is a bare throwaway Postgres
//! server for library crates' tests; [`Server`] guards an external server
//! (influxd, prometheus); [`chromium`] runs headless Chromium.

pub mod chromium;
mod http;
pub mod locks;
mod pg;
mod server;

pub use http::{http_get, http_post};
pub use pg::PgNode;
pub use server::{Server, poll_async};

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A lab in its own temporary directory, driven through the CLI.
pub struct TestLab {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl TestLab {
    /// A new empty lab directory; `bin` is the prodhome binary
    /// (`env!("CARGO_BIN_EXE_prodhome")`).
    pub fn new(bin: &str) -> TestLab {
        let dir = tempfile::Builder::new()
            .prefix("ph-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        // The server account must be able to pass through to its data dir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        TestLab { bin: bin.into(), dir }
    }

    /// The seed lab without its hum, written out: for tests that count
    /// rows and must not race background traffic.
    pub fn quiet(bin: &str) -> TestLab {
        TestLab::new(bin)
            .lab(QUIET_SEED)
            .file("schema.sql", lab::init::SEED_SCHEMA)
    }

    /// Writes `prodhome.toml`.
    pub fn lab(self, toml: &str) -> TestLab {
        self.file("prodhome.toml", toml)
    }

    /// Writes a file into the lab directory.
    pub fn file(self, name: &str, text: &str) -> TestLab {
        self.write(name, text);
        self
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write lab file");
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory (kept short: unix socket paths are limited).
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("s")
    }

    /// A `prodhome` command in the lab directory with the lab's state dir.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(self.dir.path())
            .env("PRODHOME_STATE_DIR", self.state())
            .env("PRODHOME_CACHE_DIR", cache_dir())
            .env_remove("PGPASSWORD");
        cmd
    }

    /// Runs `prodhome ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run prodhome")
    }

    /// `prodhome up -d`, which must succeed.
    pub fn up(&self) -> Output {
        let out = self.run(&["up", "-d", "--timeout", "120s"]);
        assert_success(&out, "prodhome up -d");
        out
    }

    /// `prodhome status --json`.
    pub fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert_success(&out, "prodhome status --json");
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    /// `prodhome status --json`, or `None` while it cannot answer (a daemon
    /// that is dying right now).
    pub fn try_status(&self) -> Option<Value> {
        let out = self.run(&["status", "--json"]);
        serde_json::from_slice(&out.stdout)
            .ok()
            .filter(|_| out.status.success())
    }

    /// One node's entry in the status.
    pub fn node(&self, name: &str) -> Value {
        let status = self.status();
        let nodes = status["nodes"].as_array().expect("nodes").clone();
        nodes
            .into_iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Runs one SQL command through `prodhome psql NODE -Atc SQL`; returns
    /// its trimmed output. Panics when psql fails.
    pub fn sql(&self, node: &str, sql: &str) -> String {
        let out = self.run(&["psql", node, "-v", "ON_ERROR_STOP=1", "-Atc", sql]);
        assert_success(&out, &format!("psql {node} -c {sql}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Pids of every process whose command line mentions this lab's
    /// directory (the servers, the daemon).
    pub fn processes(&self) -> Vec<u32> {
        processes_mentioning(self.dir.path())
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.command().args(["down"]).output();
        // Whatever `down` could not stop (a test that broke things on
        // purpose) is killed outright.
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
        }
    }
}

/// The seed lab's nodes and replication, and nothing else.
const QUIET_SEED: &str = r#"name = "bookstore"
[postgres.publisher]
[postgres.subscriber1]
[postgres.subscriber2]
[replication.books]
publisher = "publisher"
subscribers = ["subscriber1", "subscriber2"]
schema = "schema.sql"
tables = ["books"]
"#;

/// Every test shares one template cache, so only the first lab pays initdb.
fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("prodhome-test-cache")
}

/// Pids of every process (but this one) whose command line mentions `dir`
/// or whose working directory is in it: a lab's or a server's processes.
pub(crate) fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cmdline.contains(&needle) || cwd.starts_with(dir) {
            pids.push(pid);
        }
    }
    pids
}

/// Panics with the command's output unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `limit` naming `what`.
pub fn poll<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Says why a test cannot run on this machine and lets it return early;
/// where a skip would hide a missing install step (`.ci/run` sets
/// `PRODHOME_TEST_NO_SKIP=1`), it fails the test instead.
pub fn skip(reason: &str) {
    if std::env::var_os("PRODHOME_TEST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("this test would be skipped, which PRODHOME_TEST_NO_SKIP=1 forbids: {reason}");
    }
    // The test's own report (the harness shows it with the result), not
    // logging: no subscriber runs in tests.
    eprintln!("skipped: {reason}");
}
