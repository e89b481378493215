//! The supervisor with real processes: restarts with backoff, a crash-loop
//! limit, stop escalation for a process that ignores its stop signal.

use std::path::Path;
use std::time::Duration;

use model::{Event, EventKind};
use nix::sys::signal::Signal;
use supervisor::{RestartMode, RestartPolicy, UnitSpec, UnitState, spawn_unit};
use tokio::sync::mpsc;

fn sh(name: &str, script: &str, dir: &Path, policy: RestartPolicy) -> UnitSpec {
    UnitSpec {
        name: name.into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
        cwd: Some(dir.to_path_buf()),
        user: None,
        log: dir.join(format!("{name}.log")),
        stop_signal: Signal::SIGTERM,
        stop_timeout: Duration::from_millis(300),
        policy,
        ready: None,
        probe_interval: Duration::from_millis(100),
        probe_timeout: Duration::from_millis(100),
    }
}

fn fast(max_restarts: u32) -> RestartPolicy {
    RestartPolicy {
        mode: RestartMode::OnFailure,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_restarts,
        stable_after: Duration::from_secs(60),
    }
}

async fn next(rx: &mut mpsc::Receiver<Event>, name: &str) -> EventKind {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no event while waiting for {name}"))
        .expect("channel open")
        .kind
}

#[tokio::test]
async fn a_crash_looping_unit_is_restarted_with_backoff_then_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let unit = spawn_unit(sh("crasher", "echo boom; exit 3", dir.path(), fast(2)), tx);
    unit.start().await;
    let mut kinds = Vec::new();
    loop {
        let kind = next(&mut rx, "gave_up").await;
        let done = matches!(kind, EventKind::GaveUp { .. });
        kinds.push(kind);
        if done {
            break;
        }
    }
    // "ready" may or may not come before a process this short-lived exits.
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).filter(|n| *n != "ready").collect();
    let cycle = ["started", "exited", "restarting"];
    let want: Vec<&str> = cycle
        .iter()
        .chain(&cycle)
        .chain(&["started", "exited", "gave_up"])
        .copied()
        .collect();
    assert_eq!(names, want);
    let EventKind::Exited { exit, expected } = &kinds.iter().rev().nth(1).unwrap() else {
        panic!("{kinds:?}")
    };
    assert_eq!((exit.code, *expected), (Some(3), false));
    let status = unit.status();
    assert_eq!((status.state, status.restarts), (UnitState::Failed, 2));
    let log = std::fs::read_to_string(dir.path().join("crasher.log")).unwrap();
    assert_eq!(log.matches("boom").count(), 3);
}

#[tokio::test]
async fn stop_escalates_to_sigkill_for_a_process_that_ignores_its_stop_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let script = "trap '' TERM; echo started; while true; do sleep 0.05; done";
    let unit = spawn_unit(sh("stubborn", script, dir.path(), fast(5)), tx);
    unit.start().await;
    unit.wait_ready(Duration::from_secs(10)).await.unwrap();
    // Wait until the trap is installed (the script printed its line).
    let log = dir.path().join("stubborn.log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("started")
    {
        assert!(tokio::time::Instant::now() < deadline, "script never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = unit.status().pid.unwrap();
    unit.stop().await;
    assert!(!supervisor::alive(pid));
    assert_eq!(unit.status().state, UnitState::Stopped);
    let mut exited = None;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        if let EventKind::Exited { exit, expected } = event.kind {
            exited = Some((exit.signal, expected));
        }
    }
    assert_eq!(
        exited,
        Some((Some(9), true)),
        "the stop must have ended in SIGKILL"
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("did not stop in time")
    );
}

#[tokio::test]
async fn a_killed_unit_comes_back_with_a_new_pid() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = mpsc::channel(64);
    let policy = RestartPolicy {
        mode: RestartMode::Always,
        ..fast(5)
    };
    let unit = spawn_unit(sh("sleeper", "exec sleep 30", dir.path(), policy), tx);
    unit.start().await;
    unit.wait_ready(Duration::from_secs(10)).await.unwrap();
    let first = unit.status().pid.unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = unit.status();
        if s.state == UnitState::Ready && s.pid.is_some_and(|p| p != first) {
            assert_eq!(s.restarts, 1);
            assert_eq!(s.last_exit.unwrap().signal, Some(9));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not restarted: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unit.stop().await;
}
