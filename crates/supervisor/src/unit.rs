//! One supervised process: its spec, its status, and the handle the daemon
//! holds. The task that runs it is in `run.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use model::{Event, Exit, now_ns};
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

use crate::log::{LogMode, tail};
use crate::order::Condition;
use crate::policy::RestartPolicy;
use crate::probe::ProbeSpec;
use crate::run::UnitTask;

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

/// The daemon's grip on a unit's task.
#[derive(Clone)]
pub struct UnitHandle {
    name: String,
    log: PathBuf,
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<UnitStatus>,
}

impl UnitHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn status(&self) -> UnitStatus {
        self.status.borrow().clone()
    }

    /// The current log file (rotated ones are `PATH.1`, `PATH.2`…).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the unit's log, oldest first: for the message
    /// when it fails to start or get ready.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        tail(&self.log, n)
    }

    /// Starts the unit if it is not running, and returns once the unit's
    /// task has taken the command (its state is no longer stopped; it may
    /// have failed again already, as a program that cannot run does).
    pub async fn start(&self) {
        let (ack, taken) = oneshot::channel();
        if self.tx.send(Command::Start(ack)).await.is_ok() {
            let _ = taken.await;
        }
    }

    /// Stops the unit (stop signal, then SIGKILL after the timeout) and
    /// returns once it has exited.
    pub async fn stop(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Stops the unit and starts it again.
    pub async fn restart(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Restart(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Waits until the unit is ready. Fails with the last status when it
    /// gave up, or when `limit` passes first.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), UnitStatus> {
        self.wait_for(Condition::Ready, limit).await
    }

    /// Waits until the unit meets `condition` (see [`Condition`]). Fails
    /// with the last status when the unit stopped, failed or exited without
    /// meeting it, or when `limit` passes first. A restarting unit is waited
    /// for.
    pub async fn wait_for(&self, condition: Condition, limit: Duration) -> Result<(), UnitStatus> {
        let mut rx = self.status.clone();
        let waited = timeout(limit, async {
            loop {
                let verdict = meets(&rx.borrow_and_update(), condition);
                if let Some(met) = verdict {
                    return met;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        match waited {
            Ok(true) => Ok(()),
            _ => Err(self.status()),
        }
    }
}

/// `Some(true)`: met; `Some(false)`: cannot be met without a new start;
/// `None`: not yet.
fn meets(s: &UnitStatus, condition: Condition) -> Option<bool> {
    match s.state {
        UnitState::Stopped | UnitState::Failed => return Some(false),
        // A job that ran and finished did start, but serves nothing.
        UnitState::Exited => return Some(condition == Condition::Started),
        UnitState::Backoff => return None,
        UnitState::Starting | UnitState::Ready | UnitState::Unready => {}
    }
    let met = match condition {
        Condition::Started => s.pid.is_some(),
        Condition::Ready => s.state == UnitState::Ready,
        Condition::Healthy => s.state == UnitState::Ready && s.healthy,
    };
    met.then_some(true)
}

/// Gives the unit a task of its own, stopped until [`UnitHandle::start`].
/// Must be called within a tokio runtime.
pub fn spawn_unit(spec: UnitSpec, events: mpsc::Sender<Event>) -> UnitHandle {
    let (tx, rx) = mpsc::channel(16);
    let initial = UnitStatus {
        name: spec.name.clone(),
        state: UnitState::Stopped,
        pid: None,
        restarts: 0,
        last_exit: None,
        since_ns: now_ns(),
        healthy: false,
        last_probe_error: None,
        ready_once: false,
    };
    let (status_tx, status) = watch::channel(initial);
    let handle = UnitHandle {
        name: spec.name.clone(),
        log: spec.log.clone(),
        tx,
        status,
    };
    tokio::spawn(UnitTask::new(Arc::new(spec), rx, status_tx, events).run());
    handle
}
