//! Test helpers: points for every panel, external servers that die with
//! the test, and an async poll with a deadline.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use model::Point;

pub(crate) const S: i64 = 1_000_000_000;
pub(crate) const NODES: [&str; 3] = ["publisher", "subscriber1", "subscriber2"];

/// One point per second from `t0` for `secs` seconds for every series
/// every panel reads, on three nodes; locks split by two modes and two
/// locktypes so that grouping has something to sum. Values count the
/// seconds (0, 1, 2, ...), locks 1 to 3.
pub(crate) fn panel_points(t0: i64, secs: i64) -> Vec<Point> {
    let mut points = Vec::new();
    for i in 0..secs {
        let ts = t0 + i * S;
        for node in NODES {
            for panel in web::PANELS {
                for q in panel.queries {
                    let mut p = Point::new(q.measurement, ts).tag("node", node);
                    for tag in q.by.iter().filter(|t| **t != "node") {
                        p = p.tag(*tag, format!("{tag}-a"));
                    }
                    if q.measurement == "locks" && q.field == "count" {
                        for (mode, locktype) in [
                            ("Share", "relation"),
                            ("Share", "tuple"),
                            ("Exclusive", "relation"),
                        ] {
                            points.push(
                                p.clone()
                                    .tag("mode", mode)
                                    .tag("locktype", locktype)
                                    .int("count", 1 + i % 3),
                            );
                        }
                    } else {
                        points.push(p.float(q.field, i as f64));
                    }
                }
            }
        }
    }
    points
}

/// A server process, killed on drop (also when the test panics).
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    log: std::path::PathBuf,
}

impl Server {
    /// Starts `bin` with `args`, output to `log`. Panics with how to get
    /// the binary when it is missing: tests never skip silently.
    pub(crate) fn start(bin: &str, package: &str, args: &[String], log: &Path, port: u16) -> Server {
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
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        Server {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after
/// `limit` naming `what`.
pub(crate) async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
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
