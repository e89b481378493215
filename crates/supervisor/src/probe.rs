//! Probes: is a unit ready, is it still alive? Each probe is data (what to
//! check, how often, how many results in a row count), so the lab file can
//! describe it and status can name it; and the [`Prober`] that keeps a
//! unit's probe going during one run, counting results in a row.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::{Instant, sleep_until, timeout};

use crate::job::run_with_timeout;
use crate::process::signal_group;

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
    cmd.args(args).envs(ctx.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &ctx.cwd {
        cmd.current_dir(dir);
    }
    if let Some((uid, gid)) = ctx.user {
        cmd.uid(uid).gid(gid);
    }
    let done = run_with_timeout(cmd, None, limit)
        .await
        .map_err(|e| e.to_string())?;
    // Whatever the probe left behind goes with it.
    let _ = signal_group(done.pid, Signal::SIGKILL);
    match done.last_stderr_line {
        _ if done.exit.success() => Ok(()),
        Some(last) => Err(format!("{}: {last}", done.exit)),
        None => Err(done.exit.to_string()),
    }
}

/// Did `GET url` answer 2xx? Every attempt opens a connection of its own
/// (no pooling): a probe asks whether the unit accepts connections now, which
/// a kept-alive socket from an earlier attempt would not tell.
async fn http_get(url: &str) -> Result<(), String> {
    if !url.starts_with("http://") {
        return Err("only http:// URLs can be probed".into());
    }
    let response = client()?
        .get(url)
        .send()
        .await
        .map_err(|e| model::root_cause(&e))?;
    let code = response.status();
    if code.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}, expected 2xx", code.as_u16()))
    }
}

/// The probes' one client: loopback only, so no proxy from the environment.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .user_agent("prodhome-probe")
                .build()
                .map_err(|e| format!("could not build an HTTP client: {}", model::root_cause(&e)))
        })
        .as_ref()
        .map_err(Clone::clone)
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

    fn http(url: &str) -> ProbeSpec {
        ProbeSpec::new(ProbeCheck::Http { url: url.into() })
    }

    #[tokio::test]
    async fn an_http_probe_of_a_closed_port_names_the_url_and_the_refusal() {
        // Bound then dropped: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/health");
        let error = attempt(&http(&url), &ProbeContext::default()).await.unwrap_err();
        assert!(error.starts_with(&format!("http GET {url}: ")), "{error}");
        assert!(error.contains("refused"), "{error}");
    }

    #[tokio::test]
    async fn only_http_urls_are_probed() {
        let error = attempt(&http("https://127.0.0.1:1/"), &ProbeContext::default())
            .await
            .unwrap_err();
        assert!(error.ends_with("only http:// URLs can be probed"), "{error}");
    }
}
