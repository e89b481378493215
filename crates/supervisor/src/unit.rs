//! One supervised process: its spec, its status, and the commands its task
//! takes. The types only: the task that runs a unit is in `run.rs`, the
//! handle the daemon holds in `handle.rs`; both import these, neither the
//! other's.

use std::path::PathBuf;
use std::time::Duration;

use model::Exit;
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::log::{LineTap, LogMode};
use crate::policy::RestartPolicy;
use crate::probe::ProbeSpec;

/// How to run one long-lived process.
pub struct UnitSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set on top of the daemon's own environment.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// (uid, gid) to run as, when not the current user.
    pub user: Option<(u32, u32)>,
    /// stdout and stderr end up here, as `log_mode` says.
    pub log: PathBuf,
    pub log_mode: LogMode,
    /// Sees every line the unit prints (rotated logs only; see [`LineTap`]).
    pub line_tap: Option<LineTap>,
    pub stop_signal: Signal,
    /// How long the stop signal has before SIGKILL.
    pub stop_timeout: Duration,
    pub policy: RestartPolicy,
    /// Decides when the unit is ready (and, failing later, unready). None:
    /// ready as soon as it started.
    pub ready: Option<ProbeSpec>,
    /// Runs once the unit is first ready; failing `failure_threshold` times in
    /// a row gets the unit restarted (as a failure, under its policy).
    pub live: Option<ProbeSpec>,
}

impl UnitSpec {
    /// A unit with the defaults a service wants: rotated logs, SIGTERM then
    /// SIGKILL after 10 s, the default restart policy, no probes.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, log: impl Into<PathBuf>) -> Self {
        UnitSpec {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            user: None,
            log: log.into(),
            log_mode: LogMode::default(),
            line_tap: None,
            stop_signal: Signal::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            policy: RestartPolicy::default(),
            ready: None,
            live: None,
        }
    }
}

/// Where a unit is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// Not started, or stopped on request.
    Stopped,
    /// Running, its ready probe not passed yet.
    Starting,
    Ready,
    /// Running but failing its ready probe after having passed it.
    Unready,
    /// Ended unasked; waiting out the backoff before a restart.
    Backoff,
    /// Ended by itself with `exit(0)`, and the policy does not restart that.
    Exited,
    /// Ended and will not be restarted (a failure under `restart = "no"`, or
    /// a crash loop).
    Failed,
}

impl UnitState {
    pub fn as_str(&self) -> &'static str {
        match self {
            UnitState::Stopped => "stopped",
            UnitState::Starting => "starting",
            UnitState::Ready => "ready",
            UnitState::Unready => "unready",
            UnitState::Backoff => "down",
            UnitState::Exited => "exited",
            UnitState::Failed => "failed",
        }
    }

    /// True while a process runs.
    pub fn running(&self) -> bool {
        matches!(self, UnitState::Starting | UnitState::Ready | UnitState::Unready)
    }
}

/// A snapshot of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStatus {
    pub name: String,
    pub state: UnitState,
    pub pid: Option<u32>,
    /// Restarts since the unit was first started.
    pub restarts: u32,
    pub last_exit: Option<Exit>,
    /// When `state` last changed.
    pub since_ns: i64,
    /// Ready, and its live probe (if any) passed since.
    pub healthy: bool,
    /// What the last failed probe attempt of this run saw, naming the probe
    /// (`ready probe: tcp 127.0.0.1:8080: Connection refused…`); cleared on
    /// every start. For the message when a unit never gets ready.
    pub last_probe_error: Option<String>,
    /// Ready at least once since the unit was first started. A unit that
    /// ends before it ever was is not restarted: `Failed` with this false
    /// means it failed on its first start, and its log says why.
    pub ready_once: bool,
}

pub(crate) enum Command {
    /// Acknowledged once the unit is starting (or already running).
    Start(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
}
