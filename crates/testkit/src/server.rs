//! External servers a test starts (influxd, prometheus), and an async poll
//! with a deadline for tests that run inside tokio.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A server process in its own process group, killed (group and all) on
/// drop, also when the test panics.
pub struct Server {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts `bin` with `args`, output to `log`. Panics with how to get
    /// the binary when it is missing: tests never skip silently.
    pub fn start(bin: &str, package: &str, args: &[String], log: &Path, port: u16) -> Server {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: this test needs Debian's `{package}` package. \
             `bash .ci/run` installs it (or: apt-get install {package})"
        );
        let out = std::fs::File::create(log).expect("log file");
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        Server {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after
/// `limit` naming `what`: [`crate::poll`] for async tests.
pub async fn poll_async<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
