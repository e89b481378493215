//! Restart policies, backoff, the crash-loop limit, stop escalation.

use std::time::Duration;

use model::EventKind;
use nix::sys::signal::Signal;
use supervisor::{Condition, LogMode, RestartMode, UnitState};

use super::{Harness, fast, is, poll, read, sh};

#[tokio::test]
async fn a_crash_looping_unit_is_restarted_with_backoff_then_given_up_loudly() {
    let mut h = Harness::new();
    let mut spec = sh("crasher", "echo boom; exit 3", h.dir());
    spec.policy = fast(RestartMode::OnFailure, 2);
    let unit = h.spawn(spec);
    unit.start().await;
    let gave_up = h.until("crasher", "gave_up", is("gave_up")).await;
    assert_eq!(gave_up.kind, EventKind::GaveUp { restarts: 2 });
    // "ready" may or may not come before a process this short-lived exits.
    let names: Vec<&str> = h.kinds("crasher").into_iter().filter(|n| *n != "ready").collect();
    let cycle = ["started", "exited", "restarting"];
    let want: Vec<&str> = cycle
        .iter()
        .chain(&cycle)
        .chain(&["started", "exited", "crash_loop", "gave_up"])
        .copied()
        .collect();
    assert_eq!(names, want);
    let crash_loop = h.seen.iter().find(|e| e.kind.name() == "crash_loop").unwrap();
    assert_eq!(crash_loop.kind, EventKind::CrashLoop { restarts: 2 });
    let backoffs: Vec<u64> = h
        .seen
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Restarting { after_ms, .. } => Some(after_ms),
            _ => None,
        })
        .collect();
    assert_eq!(backoffs, [10, 20], "exponential backoff");
    let status = unit.status();
    assert_eq!((status.state, status.restarts), (UnitState::Failed, 2));
    assert_eq!(status.last_exit.unwrap().code, Some(3));
    let log = unit.log_path().to_path_buf();
    poll(
        "three booms and the crash loop in the log",
        Duration::from_secs(10),
        || {
            let text = read(&log);
            (text.matches("boom").count() == 3 && text.contains("crash loop")).then_some(())
        },
    )
    .await;
    assert!(
        unit.log_tail(1)[0].contains("crash loop: failed 2 restarts in a row"),
        "{:?}",
        unit.log_tail(3)
    );
}

#[tokio::test]
async fn restart_modes_no_on_failure_and_always_behave_as_named() {
    let mut h = Harness::new();
    // (name, mode, script, final state, restarts)
    let cases = [
        ("no-fail", RestartMode::No, "exit 3", UnitState::Failed, 0),
        ("no-ok", RestartMode::No, "exit 0", UnitState::Exited, 0),
        (
            "onfail-ok",
            RestartMode::OnFailure,
            "exit 0",
            UnitState::Exited,
            0,
        ),
        // Fails twice, then runs: restarted until it does.
        (
            "onfail-fail",
            RestartMode::OnFailure,
            "echo x >> onfail.runs; [ $(wc -l < onfail.runs) -ge 3 ] && exec sleep 60; exit 4",
            UnitState::Ready,
            2,
        ),
        // Exits 0 twice, then runs: "always" restarts even a clean exit.
        (
            "always-ok",
            RestartMode::Always,
            "echo x >> always.runs; [ $(wc -l < always.runs) -ge 3 ] && exec sleep 60; exit 0",
            UnitState::Ready,
            2,
        ),
    ];
    let mut units = Vec::new();
    for (name, mode, script, state, restarts) in cases {
        let mut spec = sh(name, script, h.dir());
        spec.policy = fast(mode, 5);
        let unit = h.spawn(spec);
        unit.start().await;
        units.push((unit, state, restarts));
    }
    for (unit, state, restarts) in &units {
        let what = format!("{} {state:?} after {restarts} restarts", unit.name());
        poll(&what, Duration::from_secs(20), || {
            let s = unit.status();
            (s.state == *state && s.restarts == *restarts).then_some(s)
        })
        .await;
    }
    // The ones that stay down emitted their exit, and no restart.
    h.drain();
    for name in ["no-fail", "no-ok", "onfail-ok"] {
        assert_eq!(h.kinds(name), ["started", "ready", "exited"], "{name}");
    }
    let restarts = h
        .kinds("always-ok")
        .iter()
        .filter(|k| **k == "restarting")
        .count();
    assert_eq!(restarts, 2);
    let (no_ok, ..) = &units[1];
    assert!(
        no_ok
            .wait_for(Condition::Started, Duration::from_secs(1))
            .await
            .is_ok()
    );
    assert!(
        no_ok.wait_ready(Duration::from_secs(1)).await.is_err(),
        "a finished job is not ready"
    );
    for (unit, ..) in &units {
        unit.stop().await;
    }
}

#[tokio::test]
async fn stop_escalates_to_sigkill_for_a_process_that_ignores_its_stop_signal() {
    let mut h = Harness::new();
    let script = "trap '' TERM; echo started; while true; do sleep 0.05; done";
    let mut spec = sh("stubborn", script, h.dir());
    spec.log_mode = LogMode::File;
    let unit = h.spawn(spec);
    unit.start().await;
    unit.wait_ready(Duration::from_secs(10)).await.unwrap();
    // Wait until the trap is installed (the script printed its line).
    let log = unit.log_path().to_path_buf();
    poll("the script to start", Duration::from_secs(10), || {
        read(&log).contains("started").then_some(())
    })
    .await;
    let pid = unit.status().pid.unwrap();
    unit.stop().await;
    assert!(!supervisor::alive(pid));
    assert_eq!(unit.status().state, UnitState::Stopped);
    let exited = h.until("stubborn", "exited", is("exited")).await;
    let EventKind::Exited { exit, expected } = exited.kind else {
        unreachable!()
    };
    assert_eq!(
        (exit.signal, expected),
        (Some(9), true),
        "the stop must have ended in SIGKILL"
    );
    assert!(read(&log).contains("did not stop in time"));
}

#[tokio::test]
async fn a_stop_signal_that_works_needs_no_escalation() {
    let mut h = Harness::new();
    let mut spec = sh("polite", "exec sleep 60", h.dir());
    spec.stop_signal = Signal::SIGINT;
    spec.stop_timeout = Duration::from_secs(30);
    let unit = h.spawn(spec);
    unit.start().await;
    unit.wait_ready(Duration::from_secs(10)).await.unwrap();
    unit.stop().await;
    let exited = h.until("polite", "exited", is("exited")).await;
    let EventKind::Exited { exit, expected } = exited.kind else {
        unreachable!()
    };
    assert_eq!((exit.signal, expected), (Some(2), true));
    assert!(!read(unit.log_path()).contains("did not stop in time"));
}

#[tokio::test]
async fn a_killed_unit_comes_back_with_a_new_pid() {
    let mut h = Harness::new();
    let mut spec = sh("sleeper", "exec sleep 30", h.dir());
    spec.policy = fast(RestartMode::Always, 5);
    let unit = h.spawn(spec);
    unit.start().await;
    unit.wait_ready(Duration::from_secs(10)).await.unwrap();
    let first = unit.status().pid.unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let s = poll("a restart", Duration::from_secs(10), || {
        let s = unit.status();
        (s.state == UnitState::Ready && s.pid.is_some_and(|p| p != first)).then_some(s)
    })
    .await;
    assert_eq!(s.restarts, 1);
    assert_eq!(s.last_exit.unwrap().signal, Some(9));
    unit.stop().await;
}

#[tokio::test]
async fn a_program_that_cannot_start_fails_with_the_reason_in_its_log() {
    let mut h = Harness::new();
    let mut spec = sh("ghost", "", h.dir());
    spec.program = h.dir().join("no-such-program");
    spec.policy = fast(RestartMode::No, 5);
    let unit = h.spawn(spec);
    unit.start().await;
    let exited = h.until("ghost", "exited", is("exited")).await;
    assert!(matches!(exited.kind, EventKind::Exited { exit, expected: false } if exit.code == Some(127)));
    let status = poll("failed", Duration::from_secs(10), || {
        let s = unit.status();
        (s.state == UnitState::Failed).then_some(s)
    })
    .await;
    assert_eq!(status.restarts, 0);
    let log = unit.log_path().to_path_buf();
    let line = poll("the reason in the log", Duration::from_secs(10), || {
        unit.log_tail(1).pop()
    })
    .await;
    assert!(
        line.contains("could not start") && line.contains("no-such-program"),
        "{line}"
    );
    assert!(read(&log).contains("No such file"));
}

#[tokio::test]
async fn a_unit_that_ends_before_it_was_ever_ready_is_not_restarted() {
    let mut h = Harness::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spec = sh("typo", "echo 'FATAL: bad setting'; exit 1", h.dir());
    // Nothing listens there: it never gets ready.
    spec.ready = Some(supervisor::ProbeSpec {
        interval: Duration::from_millis(50),
        ..supervisor::ProbeSpec::new(supervisor::ProbeCheck::Tcp { port })
    });
    let unit = h.spawn(spec);
    unit.start().await;
    let failed = unit.wait_ready(Duration::from_secs(20)).await.unwrap_err();
    assert_eq!(failed.state, UnitState::Failed, "{failed:?}");
    assert_eq!((failed.restarts, failed.ready_once), (0, false));
    assert_eq!(failed.last_exit.unwrap().code, Some(1));
    let gave_up = h.until("typo", "gave_up", is("gave_up")).await;
    assert_eq!(gave_up.kind, EventKind::GaveUp { restarts: 0 });
    assert_eq!(h.kinds("typo"), ["started", "exited", "gave_up"]);
    let log = unit.log_path().to_path_buf();
    poll("the reason in the log", Duration::from_secs(10), || {
        let text = read(&log);
        (text.contains("FATAL: bad setting") && text.contains("before it was ever ready")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_unit_that_was_ready_once_is_restarted_with_backoff_even_if_it_never_gets_ready_again() {
    let mut h = Harness::new();
    // Ready (no probe) on its first run; every later run fails at once.
    let mut spec = sh("once", "test -f broken && exit 2; touch broken; exit 1", h.dir());
    spec.policy = fast(RestartMode::OnFailure, 2);
    let unit = h.spawn(spec);
    unit.start().await;
    let gave_up = h.until("once", "gave_up", is("gave_up")).await;
    assert_eq!(gave_up.kind, EventKind::GaveUp { restarts: 2 });
    let status = unit.status();
    assert_eq!(
        (status.state, status.restarts, status.ready_once),
        (UnitState::Failed, 2, true)
    );
    assert!(h.seen.iter().any(|e| e.kind.name() == "crash_loop"));
}
