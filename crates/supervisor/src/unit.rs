//! One supervised process: its spec, its task, its handle and its status.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use model::{Event, EventKind, Exit, now_ns};
use nix::sys::signal::Signal;
use tokio::process::{Child, Command as ProcessCommand};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, timeout};

use crate::policy::{Decision, RestartPolicy, decide};
use crate::process::signal_group;

/// A readiness check: resolves `Ok` when the unit serves real requests.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How to run one long-lived process.
pub struct UnitSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// (uid, gid) to run as, when not the current user.
    pub user: Option<(u32, u32)>,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    pub policy: RestartPolicy,
    pub ready: Option<Probe>,
    /// How often a ready unit is probed again; three failures in a row make
    /// it not ready.
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
}

/// Where a unit is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    Stopped,
    Starting,
    Ready,
    /// Running but failing its probe after having passed it.
    Unready,
    /// Exited unexpectedly; waiting to be restarted.
    Backoff,
    /// Exited and will not be restarted (policy or crash-loop limit).
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
            UnitState::Failed => "failed",
        }
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
}

enum Command {
    Start,
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
}

/// The daemon's grip on a unit's task.
#[derive(Clone)]
pub struct UnitHandle {
    name: String,
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

    /// Starts the unit if it is stopped or failed, and returns once the
    /// unit's task has taken the command (its state is no longer stopped).
    pub async fn start(&self) {
        let mut rx = self.status.clone();
        rx.mark_unchanged();
        if self.tx.send(Command::Start).await.is_err() {
            return;
        }
        if rx.borrow().state == UnitState::Stopped || rx.borrow().state == UnitState::Failed {
            let _ = rx
                .wait_for(|s| s.state != UnitState::Stopped && s.state != UnitState::Failed)
                .await;
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
        let mut rx = self.status.clone();
        let waited = timeout(limit, async {
            loop {
                let state = rx.borrow_and_update().state;
                match state {
                    UnitState::Ready => return Ok(()),
                    UnitState::Failed | UnitState::Stopped => return Err(()),
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Err(());
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            _ => Err(self.status()),
        }
    }
}

/// Gives the unit a task of its own, stopped until [`UnitHandle::start`].
pub fn spawn_unit(spec: UnitSpec, events: mpsc::Sender<Event>) -> UnitHandle {
    let (tx, rx) = mpsc::channel(16);
    let initial = UnitStatus {
        name: spec.name.clone(),
        state: UnitState::Stopped,
        pid: None,
        restarts: 0,
        last_exit: None,
        since_ns: now_ns(),
    };
    let (status_tx, status) = watch::channel(initial);
    let name = spec.name.clone();
    let task = UnitTask {
        spec: Arc::new(spec),
        rx,
        status: status_tx,
        events,
    };
    tokio::spawn(task.run());
    UnitHandle { name, tx, status }
}

struct UnitTask {
    spec: Arc<UnitSpec>,
    rx: mpsc::Receiver<Command>,
    status: watch::Sender<UnitStatus>,
    events: mpsc::Sender<Event>,
}

/// How one run of the process ended.
enum RunEnd {
    Exited(Exit),
    Stopped(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
    HandleDropped,
}

impl UnitTask {
    async fn run(mut self) {
        loop {
            // Stopped or failed: wait to be told to start.
            match self.rx.recv().await {
                None => return,
                Some(Command::Stop(ack)) => {
                    let _ = ack.send(());
                    continue;
                }
                Some(Command::Restart(ack)) => {
                    let _ = ack.send(());
                }
                Some(Command::Start) => {}
            }
            if !self.run_until_stopped().await {
                return;
            }
        }
    }

    /// Runs, restarts per policy; returns false when the handle is gone.
    async fn run_until_stopped(&mut self) -> bool {
        let mut consecutive = 0u32;
        loop {
            let started = Instant::now();
            let end = match self.spawn() {
                Ok(mut child) => self.supervise(&mut child).await,
                Err(err) => {
                    self.note_in_log(&format!("could not start: {err}"));
                    RunEnd::Exited(Exit {
                        code: Some(127),
                        signal: None,
                    })
                }
            };
            match end {
                RunEnd::HandleDropped => return false,
                RunEnd::Stopped(ack) => {
                    self.set(UnitState::Stopped, None, |_| {});
                    let _ = ack.send(());
                    return true;
                }
                RunEnd::Restart(ack) => {
                    self.set(UnitState::Starting, None, |s| s.restarts += 1);
                    self.emit(EventKind::Restarting {
                        attempt: 1,
                        after_ms: 0,
                    })
                    .await;
                    let _ = ack.send(());
                }
                RunEnd::Exited(exit) => {
                    self.emit(EventKind::Exited {
                        exit,
                        expected: false,
                    })
                    .await;
                    if started.elapsed() >= self.spec.policy.stable_after {
                        consecutive = 0;
                    }
                    match decide(&self.spec.policy, &exit, consecutive) {
                        Decision::GiveUp => {
                            self.set(UnitState::Failed, None, |s| s.last_exit = Some(exit));
                            self.emit(EventKind::GaveUp {
                                restarts: consecutive,
                            })
                            .await;
                            return true;
                        }
                        Decision::Restart { after } => {
                            consecutive += 1;
                            self.set(UnitState::Backoff, None, |s| {
                                s.last_exit = Some(exit);
                                s.restarts += 1;
                            });
                            let after_ms = after.as_millis() as u64;
                            self.emit(EventKind::Restarting {
                                attempt: consecutive,
                                after_ms,
                            })
                            .await;
                            match self.backoff(after).await {
                                None => return false,
                                Some(false) => return true,
                                Some(true) => {}
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sleeps out a backoff unless told otherwise. `None`: handle dropped;
    /// `Some(false)`: stopped; `Some(true)`: go on and restart.
    async fn backoff(&mut self, after: Duration) -> Option<bool> {
        tokio::select! {
            _ = sleep(after) => Some(true),
            cmd = self.rx.recv() => match cmd {
                None => None,
                Some(Command::Stop(ack)) => {
                    self.set(UnitState::Stopped, None, |_| {});
                    let _ = ack.send(());
                    Some(false)
                }
                Some(Command::Restart(ack)) => { let _ = ack.send(()); Some(true) }
                Some(Command::Start) => Some(true),
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let spec = &self.spec;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&spec.log)?;
        let mut cmd = ProcessCommand::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            // Its own group: stop signals reach the whole tree, and the
            // process survives a daemon killed -9 (adopted by the next one).
            .process_group(0)
            .kill_on_drop(false);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        if let Some((uid, gid)) = spec.user {
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn()
    }

    async fn supervise(&mut self, child: &mut Child) -> RunEnd {
        let pid = child.id().unwrap_or(0);
        self.set(UnitState::Starting, Some(pid), |_| {});
        self.emit(EventKind::Started { pid }).await;
        let mut ready = false;
        let mut failures = 0u32;
        let mut next_probe = Instant::now();
        loop {
            tokio::select! {
                status = child.wait() => {
                    // Children the leader left behind (postgres backends
                    // after a kill -9) would block a restart: clear them.
                    let _ = signal_group(pid, Signal::SIGKILL);
                    return RunEnd::Exited(to_exit(status));
                }
                cmd = self.rx.recv() => match cmd {
                    Some(Command::Start) => {}
                    Some(Command::Stop(ack)) => {
                        let exit = self.stop_child(child, pid).await;
                        self.set(UnitState::Stopped, None, |s| s.last_exit = Some(exit));
                        self.emit(EventKind::Exited { exit, expected: true }).await;
                        return RunEnd::Stopped(ack);
                    }
                    Some(Command::Restart(ack)) => {
                        let exit = self.stop_child(child, pid).await;
                        self.set(UnitState::Starting, None, |s| s.last_exit = Some(exit));
                        self.emit(EventKind::Exited { exit, expected: true }).await;
                        return RunEnd::Restart(ack);
                    }
                    None => {
                        self.stop_child(child, pid).await;
                        return RunEnd::HandleDropped;
                    }
                },
                _ = tokio::time::sleep_until(next_probe) => {
                    let passed = self.probe().await;
                    if passed {
                        failures = 0;
                        if !ready {
                            ready = true;
                            self.set(UnitState::Ready, Some(pid), |_| {});
                            self.emit(EventKind::Ready).await;
                        }
                    } else if ready {
                        failures += 1;
                        if failures >= 3 {
                            ready = false;
                            self.set(UnitState::Unready, Some(pid), |_| {});
                            self.emit(EventKind::NotReady).await;
                        }
                    }
                    let gap = if ready { self.spec.probe_interval } else { Duration::from_millis(100) };
                    next_probe = Instant::now() + gap;
                }
            }
        }
    }

    async fn probe(&self) -> bool {
        match &self.spec.ready {
            None => true,
            Some(probe) => matches!(timeout(self.spec.probe_timeout, probe()).await, Ok(Ok(()))),
        }
    }

    async fn stop_child(&self, child: &mut Child, pid: u32) -> Exit {
        let _ = signal_group(pid, self.spec.stop_signal);
        // A paused (SIGSTOPped) server cannot act on the stop signal.
        let _ = signal_group(pid, Signal::SIGCONT);
        let status = match timeout(self.spec.stop_timeout, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                self.note_in_log("did not stop in time; sending SIGKILL");
                let _ = signal_group(pid, Signal::SIGKILL);
                child.wait().await
            }
        };
        let _ = signal_group(pid, Signal::SIGKILL);
        to_exit(status)
    }

    fn set(&self, state: UnitState, pid: Option<u32>, also: impl FnOnce(&mut UnitStatus)) {
        self.status.send_modify(|s| {
            if s.state != state {
                s.since_ns = now_ns();
            }
            s.state = state;
            s.pid = pid;
            also(s);
        });
    }

    async fn emit(&self, kind: EventKind) {
        // Bounded, and we wait when it is full: the event log must not lose
        // an event, and the daemon drains it continuously.
        let _ = self.events.send(Event::now(&self.spec.name, kind)).await;
    }

    fn note_in_log(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.spec.log) {
            let _ = writeln!(f, "prodhome: {}: {line}", self.spec.name);
        }
    }
}

fn to_exit(status: std::io::Result<std::process::ExitStatus>) -> Exit {
    match status {
        Ok(s) => Exit {
            code: s.code(),
            signal: s.signal(),
        },
        Err(_) => Exit {
            code: None,
            signal: None,
        },
    }
}
