//! Probes: is a unit ready, is it still alive? Each probe is data (what to
//! check, how often, how many results in a row count), so the lab file can
//! describe it and status can name it; and the [`Prober`] that keeps a
//! unit's probe going during one run, counting results in a row.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::{Instant, sleep_until, timeout};

use crate::process::{signal_group, to_exit};

/// A check written in code (postgres nodes: a real connection runs a real
/// query): resolves `Ok` when the unit serves, `Err(what went wrong)` when not.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What a probe checks.
#[derive(Clone)]
pub enum ProbeCheck {
    /// A TCP connection to 127.0.0.1:`port` is accepted.
    Tcp { port: u16 },
    /// `GET url` answers 2xx. Only `http://` URLs: probes talk to the lab's
    /// own services on loopback.
    Http { url: String },
    /// The command exits 0. It runs with the unit's environment, working
    /// directory and account, and is killed (its whole group) at the timeout.
    Exec { argv: Vec<String> },
    /// A check written in code.
    Custom(Probe),
}

impl ProbeCheck {
    /// Names the check for messages: `tcp 127.0.0.1:8080`, `http GET URL`,
    /// `exec "a" "b"`, `custom check`.
    pub fn describe(&self) -> String {
        match self {
            ProbeCheck::Tcp { port } => format!("tcp 127.0.0.1:{port}"),
            ProbeCheck::Http { url } => format!("http GET {url}"),
            ProbeCheck::Exec { argv } => format!("exec {argv:?}"),
            ProbeCheck::Custom(_) => "custom check".into(),
        }
    }
}

impl fmt::Debug for ProbeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A check and its timing, as Kubernetes has them: probed every `interval`,
/// each attempt given `timeout`; `success_threshold` passes in a row make the
/// unit ready (or healthy), `failure_threshold` failures in a row make it
/// unready (ready probe) or get it restarted (live probe).
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub check: ProbeCheck,
    pub interval: Duration,
    /// How often the ready probe runs while the unit is not (yet) ready: a
    /// unit should be seen ready soon after it is, so this is short.
    pub start_interval: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeSpec {
    /// `check` every second (every 100 ms until ready), a 1 s timeout, ready
    /// after one pass, acted on after three failures in a row.
    pub fn new(check: ProbeCheck) -> Self {
        ProbeSpec {
            check,
            interval: Duration::from_secs(1),
            start_interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }
}

/// What an exec probe inherits from its unit.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeContext {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) user: Option<(u32, u32)>,
}

/// Runs one attempt. The error names the check and what it saw.
pub(crate) async fn attempt(spec: &ProbeSpec, ctx: &ProbeContext) -> Result<(), String> {
    let limit = spec.timeout;
    let result = match &spec.check {
        // Exec enforces its own timeout: it must kill what it started.
        ProbeCheck::Exec { argv } => exec(argv, ctx, limit).await,
        check => match timeout(limit, quick(check)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {limit:?}")),
        },
    };
    result.map_err(|why| format!("{}: {why}", spec.check.describe()))
}

async fn quick(check: &ProbeCheck) -> Result<(), String> {
    match check {
        ProbeCheck::Tcp { port } => TcpStream::connect(("127.0.0.1", *port))
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        ProbeCheck::Http { url } => http_get(url).await,
        ProbeCheck::Custom(probe) => probe().await,
        ProbeCheck::Exec { .. } => unreachable!("exec probes run with their own timeout"),
    }
}

async fn exec(argv: &[String], ctx: &ProbeContext, limit: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(ctx.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &ctx.cwd {
        cmd.current_dir(dir);
    }
    if let Some((uid, gid)) = ctx.user {
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn().map_err(|e| format!("could not run it: {e}"))?;
    // Whatever the probe left behind goes with it, also when this future is
    // dropped mid-way (the unit stopped while it ran).
    let _group = KillGroup(child.id().unwrap_or(0));
    match timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(waited) => {
            let stderr = waited.as_ref().map(|o| o.stderr.clone()).unwrap_or_default();
            let exit = to_exit(waited.map(|o| o.status));
            let stderr = String::from_utf8_lossy(&stderr);
            match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(last) => Err(format!("{exit}: {}", last.trim())),
                None => Err(exit.to_string()),
            }
        }
        Err(_) => Err(format!("still running after {limit:?}; killed")),
    }
}

/// SIGKILLs a process group when dropped.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if self.0 != 0 {
            let _ = signal_group(self.0, Signal::SIGKILL);
        }
    }
}

/// The smallest HTTP/1.1 client that answers "did `GET url` return 2xx?".
async fn http_get(url: &str) -> Result<(), String> {
    let (authority, host, port, path) = split_url(url)?;
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: prodhome-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // Only the status line matters; read until it is complete.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 || head.len() > 8192 {
            return Err("the connection closed before an HTTP status line".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP {code}, expected 2xx"))
    }
}

/// `http://host[:port][/path][?query]` → (authority, host, port, path).
fn split_url(url: &str) -> Result<(&str, &str, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs can be probed".to_string())?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
            (host, port)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("no host in the URL".into());
    }
    Ok((authority, host, port, path))
}

type Attempt = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One probe of a run: its next attempt (kept across `select!` rounds, so
/// other branches firing never cancel it) and its results in a row.
pub(crate) struct Prober {
    pub(crate) spec: Option<Arc<ProbeSpec>>,
    ctx: Arc<ProbeContext>,
    attempt: Option<Attempt>,
    /// Scheduled at least once this run.
    pub(crate) begun: bool,
    successes: u32,
    pub(crate) failures: u32,
}

impl Prober {
    pub(crate) fn new(spec: Option<ProbeSpec>, ctx: &Arc<ProbeContext>) -> Self {
        Prober {
            spec: spec.map(Arc::new),
            ctx: ctx.clone(),
            attempt: None,
            begun: false,
            successes: 0,
            failures: 0,
        }
    }

    pub(crate) fn schedule(&mut self, at: Instant) {
        let Some(spec) = self.spec.clone() else {
            return;
        };
        let ctx = self.ctx.clone();
        self.begun = true;
        self.attempt = Some(Box::pin(async move {
            sleep_until(at).await;
            attempt(&spec, &ctx).await
        }));
    }

    /// The next attempt after one finished: quickly while not passing yet,
    /// at the regular interval once it does.
    pub(crate) fn schedule_next(&mut self, passing: bool) {
        if let Some(spec) = &self.spec {
            let gap = if passing {
                spec.interval
            } else {
                spec.start_interval
            };
            self.schedule(Instant::now() + gap);
        }
    }

    /// The result of the scheduled attempt; never resolves when none is.
    pub(crate) async fn next(&mut self) -> Result<(), String> {
        match &mut self.attempt {
            Some(attempt) => {
                let result = attempt.await;
                self.attempt = None;
                result
            }
            None => std::future::pending().await,
        }
    }

    /// Counts a pass; true once `success_threshold` passed in a row.
    pub(crate) fn passed(&mut self) -> bool {
        self.failures = 0;
        self.successes = self.successes.saturating_add(1);
        self.spec
            .as_ref()
            .is_some_and(|s| self.successes >= s.success_threshold.max(1))
    }

    /// Counts a failure; true once `failure_threshold` failed in a row.
    pub(crate) fn failed(&mut self) -> bool {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        self.spec
            .as_ref()
            .is_some_and(|s| self.failures >= s.failure_threshold.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let cases = [
            (
                "http://127.0.0.1:8080/health",
                ("127.0.0.1:8080", "127.0.0.1", 8080, "/health"),
            ),
            ("http://localhost", ("localhost", "localhost", 80, "/")),
            ("http://[::1]:81/a?b=c#frag", ("[::1]:81", "::1", 81, "/a?b=c")),
            ("http://h:1?x", ("h:1", "h", 1, "/?x")),
        ];
        for (url, want) in cases {
            let (a, h, p, path) = want;
            assert_eq!(split_url(url), Ok((a, h, p, path.to_string())), "{url}");
        }
        assert!(split_url("https://x/").unwrap_err().contains("http://"));
        assert!(split_url("http://x:port/").unwrap_err().contains("bad port"));
    }
}
