//! The handle the daemon holds on a unit, and [`spawn_unit`], which gives
//! the unit its task (`run.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use model::{Event, now_ns};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

use crate::log::tail;
use crate::order::Condition;
use crate::run::UnitTask;
use crate::unit::{Command, UnitSpec, UnitState, UnitStatus};

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

    /// The unit's status as it changes: `changed()` returns as soon as
    /// the unit's task sets a new one (a pid, a state).
    pub fn subscribe(&self) -> watch::Receiver<UnitStatus> {
        self.status.clone()
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
