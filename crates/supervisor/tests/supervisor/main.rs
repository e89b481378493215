//! The supervisor with real processes (sh, sleep, python3 listeners):
//! restarts and crash loops, probes, log rotation. Every unit a test starts
//! is killed, with its process group, when the harness drops, even when the
//! test fails.

mod logs;
mod probes;
mod restarts;

use std::path::Path;
use std::time::Duration;

use model::{Event, EventKind};
use nix::sys::signal::Signal;
use supervisor::{RestartMode, RestartPolicy, UnitHandle, UnitSpec, spawn_unit};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// `sh -c SCRIPT` in `dir`, logging to `dir/NAME.log` (rotated, the service
/// default), SIGTERM with a short timeout, restarted quickly on failure.
fn sh(name: &str, script: &str, dir: &Path) -> UnitSpec {
    let mut spec = UnitSpec::new(name, "/bin/sh", dir.join(format!("{name}.log")));
    spec.args = vec!["-c".into(), script.into()];
    spec.cwd = Some(dir.to_path_buf());
    spec.stop_timeout = Duration::from_millis(300);
    spec.policy = fast(RestartMode::OnFailure, 5);
    spec
}

fn fast(mode: RestartMode, max_restarts: u32) -> RestartPolicy {
    RestartPolicy {
        mode,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_restarts,
        stable_after: Duration::from_secs(60),
    }
}

/// A temp dir, an event channel, and the units started in them.
struct Harness {
    dir: tempfile::TempDir,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
    units: Vec<UnitHandle>,
    /// Every event received so far, in order.
    seen: Vec<Event>,
}

impl Harness {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel(1024);
        Harness {
            dir: tempfile::tempdir().unwrap(),
            tx,
            rx,
            units: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self, spec: UnitSpec) -> UnitHandle {
        let unit = spawn_unit(spec, self.tx.clone());
        self.units.push(unit.clone());
        unit
    }

    /// Receives events until one of `unit` matches `want`, and returns it.
    async fn until(&mut self, unit: &str, what: &str, want: impl Fn(&EventKind) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} event for {unit}; saw {:#?}", self.seen))
                .expect("event channel open");
            self.seen.push(event.clone());
            if event.unit == unit && want(&event.kind) {
                return event;
            }
        }
    }

    /// Takes in the events already sent.
    fn drain(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event);
        }
    }

    /// The names of the events of `unit` seen so far.
    fn kinds(&self, unit: &str) -> Vec<&'static str> {
        self.seen
            .iter()
            .filter(|e| e.unit == unit)
            .map(|e| e.kind.name())
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for unit in &self.units {
            if let Some(pid) = unit.status().pid {
                let _ = supervisor::signal_group(pid, Signal::SIGKILL);
            }
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after
/// `limit` naming `what`. Async, so the units' tasks keep running.
async fn poll<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn is(kind: &'static str) -> impl Fn(&EventKind) -> bool {
    move |k| k.name() == kind
}
