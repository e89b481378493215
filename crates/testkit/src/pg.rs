//! A bare, throwaway Postgres server for tests of library crates (hum,
//! sampler, store, proxy) that need a real server but not a whole lab.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::{free_port, poll, processes_mentioning};

/// One Postgres server on 127.0.0.1 with `trust` authentication, superuser
/// `postgres`, database `postgres`, killed (with its whole process group) on
/// drop. Tests only: trust is not what prodhome itself configures.
pub struct PgNode {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    settings: Vec<String>,
}

const BINDIR: &str = "/usr/lib/postgresql/15/bin";

impl PgNode {
    /// Starts a server with `wal_level = logical` and waits until it accepts
    /// connections.
    pub fn start() -> PgNode {
        PgNode::start_with(&[])
    }

    /// Starts a server with extra `-c name=value` settings.
    pub fn start_with(settings: &[&str]) -> PgNode {
        let dir = tempfile::Builder::new()
            .prefix("pgn-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let data = dir.path().join("data");
        let out = as_server_user(Command::new(format!("{BINDIR}/initdb")))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut node = PgNode {
            dir,
            port: free_port(),
            child: None,
            settings: settings.iter().map(|s| s.to_string()).collect(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log");
        let mut cmd = as_server_user(Command::new(format!("{BINDIR}/postgres")));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "wal_level=logical",
                "-c",
                "fsync=off",
            ]);
        for s in &self.settings {
            cmd.args(["-c", s]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0);
        self.child = Some(cmd.spawn().expect("start postgres"));
        let port = self.port;
        poll("postgres to accept connections", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            let ok = Command::new(format!("{BINDIR}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .ok()?
                .success();
            ok.then_some(())
        });
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs SQL with psql; returns trimmed unaligned output. Panics on error.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(format!("{BINDIR}/psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGSTOP to the whole server: the postmaster and every backend
    /// (each of which sits in a session of its own, out of a group signal's
    /// reach).
    pub fn pause(&self) {
        supervisor::signal_tree(self.pid(), Signal::SIGSTOP);
    }

    /// SIGCONT to the whole server.
    pub fn resume(&self) {
        supervisor::signal_tree(self.pid(), Signal::SIGCONT);
    }

    /// kill -9 of the whole server, then start it again on the same port
    /// (crash recovery runs).
    pub fn crash_and_restart(&mut self) {
        self.kill_all();
        self.spawn();
    }

    /// kill -9 of the whole server, leaving it down: once this returns no
    /// process of it is left.
    pub fn kill_all(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The backends too: left alone they would hold the shared memory
            // a restarted server needs.
            supervisor::signal_tree(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            // A backend forked while the tree was walked, or reparented
            // once the postmaster died, is no longer under it; every one
            // of them runs in the data directory, which finds them all.
            poll(
                "the killed server's last processes to go",
                Duration::from_secs(10),
                || {
                    let left = processes_mentioning(self.dir.path());
                    for pid in &left {
                        let _ =
                            nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), Signal::SIGKILL);
                    }
                    left.is_empty().then_some(())
                },
            );
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Postgres refuses to run as root: run as the `postgres` account then.
fn as_server_user(mut cmd: Command) -> Command {
    if nix::unistd::getuid().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("a postgres account");
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    cmd
}
