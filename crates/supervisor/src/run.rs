//! The task behind a [`UnitHandle`](crate::UnitHandle): spawns the process
//! in its own group, probes it, stops it with escalation, and restarts it as
//! the policy decides, reporting every step as an event and in the status.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use model::{Event, EventKind, Exit, now_ns};
use nix::sys::signal::Signal;
use tokio::process::{Child, Command as ProcessCommand};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use crate::log::LogSink;
use crate::policy::{Decision, Ending, decide};
use crate::probe::{ProbeContext, Prober};
use crate::process::{signal_group, signal_tree, to_exit};
use crate::unit::{Command, UnitSpec, UnitState, UnitStatus};

pub(crate) struct UnitTask {
    spec: Arc<UnitSpec>,
    rx: mpsc::Receiver<Command>,
    status: watch::Sender<UnitStatus>,
    events: mpsc::Sender<Event>,
    log: LogSink,
    probe_ctx: Arc<ProbeContext>,
    /// The live probe passed (enough times) during this run.
    live_ok: bool,
    /// Ready at least once since the task began: only such a unit is
    /// restarted (see [`Decision::NeverReady`]).
    ever_ready: bool,
}

/// How one run of the process ended.
enum RunEnd {
    Exited(Exit),
    /// Stopped by us because the live probe kept failing.
    Unhealthy(Exit),
    Stopped(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
    HandleDropped,
}

/// A spawned process and the tasks reading its pipes (rotated logs only).
struct Running {
    child: Child,
    pid: u32,
    readers: Vec<JoinHandle<()>>,
}

impl UnitTask {
    pub(crate) fn new(
        spec: Arc<UnitSpec>,
        rx: mpsc::Receiver<Command>,
        status: watch::Sender<UnitStatus>,
        events: mpsc::Sender<Event>,
    ) -> Self {
        let log = LogSink::open(&spec.log, spec.log_mode, spec.line_tap.clone());
        let probe_ctx = Arc::new(ProbeContext {
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            user: spec.user,
        });
        UnitTask {
            spec,
            rx,
            status,
            events,
            log,
            probe_ctx,
            live_ok: false,
            ever_ready: false,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            // Not running: wait to be told to start.
            let ack = match self.rx.recv().await {
                None => return,
                Some(Command::Stop(ack)) => {
                    let _ = ack.send(());
                    continue;
                }
                Some(Command::Restart(ack) | Command::Start(ack)) => ack,
            };
            if !self.run_until_stopped(ack).await {
                return;
            }
        }
    }

    /// Runs, restarts per policy; returns false when the handle is gone.
    /// `ack` is answered once the unit is starting.
    async fn run_until_stopped(&mut self, ack: oneshot::Sender<()>) -> bool {
        let mut consecutive = 0u32;
        let mut ack = Some(ack);
        loop {
            self.set(UnitState::Starting, None, |_| {});
            if let Some(ack) = ack.take() {
                let _ = ack.send(());
            }
            let started = Instant::now();
            let end = self.run_once().await;
            let (exit, ending) = match end {
                RunEnd::HandleDropped => return false,
                RunEnd::Stopped(ack) => {
                    self.set(UnitState::Stopped, None, |_| {});
                    let _ = ack.send(());
                    return true;
                }
                RunEnd::Restart(ack) => {
                    // Asked for: a fresh start, not part of a crash loop.
                    consecutive = 0;
                    self.set(UnitState::Starting, None, |s| s.restarts += 1);
                    self.emit(EventKind::Restarting {
                        attempt: 1,
                        after_ms: 0,
                    })
                    .await;
                    let _ = ack.send(());
                    continue;
                }
                RunEnd::Exited(exit) => {
                    self.emit(EventKind::Exited {
                        exit,
                        expected: false,
                    })
                    .await;
                    (exit, Ending::Exited(exit))
                }
                RunEnd::Unhealthy(exit) => (exit, Ending::Unhealthy),
            };
            if started.elapsed() >= self.spec.policy.stable_after {
                consecutive = 0;
            }
            let decision = decide(&self.spec.policy, &ending, consecutive, self.ever_ready);
            if let Some(go_on) = self
                .follow(decision, exit, ending.failed(), &mut consecutive)
                .await
            {
                return go_on;
            }
        }
    }

    /// One run of the process, from spawning it to how it ended.
    async fn run_once(&mut self) -> RunEnd {
        match self.spawn() {
            Ok(running) => self.supervise(running).await,
            Err(err) => {
                let what = format!("could not start {}: {err}", self.spec.program.display());
                self.note(&what).await;
                RunEnd::Exited(Exit {
                    code: Some(127),
                    signal: None,
                })
            }
        }
    }

    /// Carries out the policy's decision after a run ended with `exit`:
    /// `None` to start the next run, `Some` to return that from
    /// [`Self::run_until_stopped`].
    async fn follow(
        &mut self,
        decision: Decision,
        exit: Exit,
        failed: bool,
        consecutive: &mut u32,
    ) -> Option<bool> {
        match decision {
            Decision::Done => {
                let state = if failed {
                    UnitState::Failed
                } else {
                    UnitState::Exited
                };
                self.set(state, None, |s| s.last_exit = Some(exit));
                Some(true)
            }
            Decision::CrashLoop => {
                let restarts = *consecutive;
                self.set(UnitState::Failed, None, |s| s.last_exit = Some(exit));
                let why = format!("crash loop: failed {restarts} restarts in a row; not restarting it again");
                self.note(&why).await;
                self.emit(EventKind::CrashLoop { restarts }).await;
                self.emit(EventKind::GaveUp { restarts }).await;
                Some(true)
            }
            Decision::NeverReady => {
                self.set(UnitState::Failed, None, |s| s.last_exit = Some(exit));
                let why = format!(
                    "ended ({exit}) before it was ever ready; not restarting it: it would fail the same way again"
                );
                self.note(&why).await;
                self.emit(EventKind::GaveUp {
                    restarts: *consecutive,
                })
                .await;
                Some(true)
            }
            Decision::Restart { after } => {
                *consecutive += 1;
                self.set(UnitState::Backoff, None, |s| {
                    s.last_exit = Some(exit);
                    s.restarts += 1;
                });
                let after_ms = after.as_millis() as u64;
                self.emit(EventKind::Restarting {
                    attempt: *consecutive,
                    after_ms,
                })
                .await;
                match self.backoff(after).await {
                    None => Some(false),
                    Some(false) => Some(true),
                    Some(true) => None,
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
                Some(Command::Start(ack)) => { let _ = ack.send(()); Some(true) }
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Running> {
        let spec = &self.spec;
        let (stdout, stderr) = self.log.stdio()?;
        let mut cmd = ProcessCommand::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
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
        let mut child = cmd.spawn()?;
        let readers = self.log.attach(&mut child);
        let pid = child.id().unwrap_or(0);
        Ok(Running { child, pid, readers })
    }

    async fn supervise(&mut self, mut run: Running) -> RunEnd {
        let pid = run.pid;
        self.live_ok = false;
        self.set(UnitState::Starting, Some(pid), |s| s.last_probe_error = None);
        self.emit(EventKind::Started { pid }).await;
        let mut ready = Prober::new(self.spec.ready.clone(), &self.probe_ctx);
        let mut live = Prober::new(self.spec.live.clone(), &self.probe_ctx);
        let mut is_ready = false;
        if ready.spec.is_none() {
            // Nothing to wait for: ready once started.
            is_ready = true;
            self.ready_now(pid);
            self.emit(EventKind::Ready).await;
            live.schedule(Instant::now());
        } else {
            ready.schedule(Instant::now());
        }
        loop {
            tokio::select! {
                status = run.child.wait() => {
                    // Children the leader left behind (postgres backends
                    // after a kill -9) would block a restart: clear them.
                    let _ = signal_group(pid, Signal::SIGKILL);
                    self.log.finish(std::mem::take(&mut run.readers)).await;
                    return RunEnd::Exited(to_exit(status));
                }
                cmd = self.rx.recv() => {
                    if let Some(end) = self.on_command(cmd, &mut run).await {
                        return end;
                    }
                }
                result = ready.next() => {
                    is_ready = self.on_ready(result, &mut ready, &mut live, is_ready, pid).await;
                }
                result = live.next() => {
                    if let Some(end) = self.on_live(result, &mut live, &mut run, pid).await {
                        return end;
                    }
                }
            }
        }
    }

    /// A command while the process runs; `Some` when it ends the run.
    async fn on_command(&mut self, cmd: Option<Command>, run: &mut Running) -> Option<RunEnd> {
        match cmd {
            Some(Command::Start(ack)) => {
                let _ = ack.send(());
                None
            }
            Some(Command::Stop(ack)) => {
                let exit = self.stop_child(run).await;
                self.set(UnitState::Stopped, None, |s| s.last_exit = Some(exit));
                self.emit(EventKind::Exited { exit, expected: true }).await;
                Some(RunEnd::Stopped(ack))
            }
            Some(Command::Restart(ack)) => {
                let exit = self.stop_child(run).await;
                self.set(UnitState::Starting, None, |s| s.last_exit = Some(exit));
                self.emit(EventKind::Exited { exit, expected: true }).await;
                Some(RunEnd::Restart(ack))
            }
            None => {
                self.stop_child(run).await;
                Some(RunEnd::HandleDropped)
            }
        }
    }

    /// One ready probe's result; returns whether the unit is ready now.
    async fn on_ready(
        &mut self,
        result: Result<(), String>,
        ready: &mut Prober,
        live: &mut Prober,
        mut is_ready: bool,
        pid: u32,
    ) -> bool {
        match result {
            Ok(()) => {
                if ready.passed() && !is_ready {
                    is_ready = true;
                    self.ready_now(pid);
                    self.emit(EventKind::Ready).await;
                    if !live.begun {
                        live.schedule(Instant::now());
                    }
                }
            }
            Err(message) => {
                self.record_probe_error("ready", &message);
                if ready.failed() && is_ready {
                    is_ready = false;
                    self.set(UnitState::Unready, Some(pid), |_| {});
                    self.emit(EventKind::ProbeFailed {
                        probe: "ready".into(),
                        message,
                    })
                    .await;
                    self.emit(EventKind::NotReady).await;
                }
            }
        }
        ready.schedule_next(is_ready);
        is_ready
    }

    /// One live probe's result; `Some` when failing it ended the run.
    async fn on_live(
        &mut self,
        result: Result<(), String>,
        live: &mut Prober,
        run: &mut Running,
        pid: u32,
    ) -> Option<RunEnd> {
        match result {
            Ok(()) => {
                if live.passed() && !self.live_ok {
                    self.live_ok = true;
                    let state = self.status.borrow().state;
                    self.set(state, Some(pid), |_| {});
                }
            }
            Err(message) => {
                self.record_probe_error("live", &message);
                if live.failed() {
                    let failures = live.failures;
                    self.note(&format!(
                        "live probe failed {failures} times in a row ({message}); restarting"
                    ))
                    .await;
                    self.emit(EventKind::ProbeFailed {
                        probe: "live".into(),
                        message,
                    })
                    .await;
                    let exit = self.stop_child(run).await;
                    self.emit(EventKind::Exited { exit, expected: true }).await;
                    return Some(RunEnd::Unhealthy(exit));
                }
            }
        }
        live.schedule_next(true);
        None
    }

    async fn stop_child(&self, run: &mut Running) -> Exit {
        let pid = run.pid;
        let _ = signal_group(pid, self.spec.stop_signal);
        // A paused (SIGSTOPped) process cannot act on the stop signal; its
        // descendants may sit in sessions of their own (postgres backends),
        // out of the group's reach, so the whole tree is resumed.
        let _ = signal_group(pid, Signal::SIGCONT);
        signal_tree(pid, Signal::SIGCONT);
        let status = match timeout(self.spec.stop_timeout, run.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                self.note("did not stop in time; sending SIGKILL").await;
                signal_tree(pid, Signal::SIGKILL);
                let _ = signal_group(pid, Signal::SIGKILL);
                run.child.wait().await
            }
        };
        let _ = signal_group(pid, Signal::SIGKILL);
        self.log.finish(std::mem::take(&mut run.readers)).await;
        to_exit(status)
    }

    fn set(&self, state: UnitState, pid: Option<u32>, also: impl FnOnce(&mut UnitStatus)) {
        let healthy = state == UnitState::Ready && (self.spec.live.is_none() || self.live_ok);
        self.status.send_modify(|s| {
            if s.state != state {
                s.since_ns = now_ns();
            }
            s.state = state;
            s.pid = pid;
            s.healthy = healthy;
            also(s);
        });
    }

    fn ready_now(&mut self, pid: u32) {
        self.ever_ready = true;
        self.set(UnitState::Ready, Some(pid), |s| s.ready_once = true);
    }

    fn record_probe_error(&self, probe: &str, message: &str) {
        let text = format!("{probe} probe: {message}");
        self.status.send_modify(|s| s.last_probe_error = Some(text));
    }

    async fn emit(&self, kind: EventKind) {
        // Bounded, and we wait when it is full: the event log must not lose
        // an event, and the daemon drains it continuously.
        let _ = self.events.send(Event::now(&self.spec.name, kind)).await;
    }

    async fn note(&self, line: &str) {
        self.log.note(&self.spec.name, line).await;
    }
}
