//! Ready and live probes: tcp, http, exec; started is not listening.

use std::path::Path;
use std::time::Duration;

use model::EventKind;
use supervisor::{Condition, ProbeCheck, ProbeSpec, RestartMode, UnitSpec, UnitState};
use testkit::free_port;

use super::{Harness, fast, is, poll, sh};

/// Answers every GET with the status code written in the file `code` in
/// its working directory (500 when there is none).
const CODE_SERVER: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            code = int(open('code').read().strip())
        except Exception:
            code = 500
        self.send_response(code)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#;

fn code_server(name: &str, dir: &Path, port: u16) -> UnitSpec {
    std::fs::write(dir.join("server.py"), CODE_SERVER).unwrap();
    let mut spec = UnitSpec::new(name, "python3", dir.join(format!("{name}.log")));
    spec.args = vec!["server.py".into(), port.to_string()];
    spec.cwd = Some(dir.to_path_buf());
    spec.stop_timeout = Duration::from_secs(5);
    spec.policy = fast(RestartMode::OnFailure, 5);
    spec
}

fn quick(check: ProbeCheck) -> ProbeSpec {
    ProbeSpec {
        interval: Duration::from_millis(100),
        start_interval: Duration::from_millis(50),
        failure_threshold: 2,
        ..ProbeSpec::new(check)
    }
}

#[tokio::test]
async fn a_service_whose_port_opens_two_seconds_after_start_is_not_ready_before() {
    let mut h = Harness::new();
    let port = free_port();
    let listen = format!(
        "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    );
    let mut spec = sh("late", &format!("sleep 2; exec python3 -c \"{listen}\""), h.dir());
    spec.ready = Some(quick(ProbeCheck::Tcp { port }));
    let unit = h.spawn(spec);
    unit.start().await;
    unit.wait_for(Condition::Started, Duration::from_secs(10))
        .await
        .unwrap();
    let started = h.until("late", "started", is("started")).await;
    // Started, probed, refused: still starting, and status says why.
    let error = poll("a refused tcp probe", Duration::from_secs(10), || {
        let s = unit.status();
        (s.state == UnitState::Starting)
            .then_some(s.last_probe_error)
            .flatten()
    })
    .await;
    assert!(
        error.starts_with(&format!("ready probe: tcp 127.0.0.1:{port}: ")),
        "{error}"
    );
    unit.wait_ready(Duration::from_secs(20)).await.unwrap();
    let ready = h.until("late", "ready", is("ready")).await;
    let waited = Duration::from_nanos((ready.ts_ns - started.ts_ns) as u64);
    assert!(waited >= Duration::from_secs(2), "ready after only {waited:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert_eq!(h.kinds("late"), ["started", "ready"]);
    unit.stop().await;
}

#[tokio::test]
async fn an_http_probe_wants_2xx_and_a_ready_unit_that_answers_500_becomes_unready() {
    let mut h = Harness::new();
    let port = free_port();
    std::fs::write(h.dir().join("code"), "500").unwrap();
    let mut spec = code_server("web", h.dir(), port);
    spec.ready = Some(quick(ProbeCheck::Http {
        url: format!("http://127.0.0.1:{port}/health?full=1"),
    }));
    let unit = h.spawn(spec);
    unit.start().await;
    let error = poll("the server answering 500", Duration::from_secs(20), || {
        let s = unit.status();
        let error = s.last_probe_error.filter(|e| e.contains("HTTP 500"))?;
        assert_eq!(s.state, UnitState::Starting);
        Some(error)
    })
    .await;
    assert!(
        error.contains(&format!("http GET http://127.0.0.1:{port}/health")),
        "{error}"
    );

    std::fs::write(h.dir().join("code"), "204").unwrap();
    unit.wait_ready(Duration::from_secs(20)).await.unwrap();

    std::fs::write(h.dir().join("code"), "500").unwrap();
    let failed = h.until("web", "probe_failed", is("probe_failed")).await;
    let EventKind::ProbeFailed { probe, message } = failed.kind else {
        unreachable!()
    };
    assert_eq!(probe, "ready");
    assert!(message.ends_with("HTTP 500, expected 2xx"), "{message}");
    h.until("web", "not_ready", is("not_ready")).await;
    assert_eq!(unit.status().state, UnitState::Unready);

    std::fs::write(h.dir().join("code"), "200").unwrap();
    unit.wait_ready(Duration::from_secs(20)).await.unwrap();
    // Unready is not a crash: the same process serves again.
    assert_eq!(unit.status().restarts, 0);
    unit.stop().await;
}

#[tokio::test]
async fn an_exec_probe_runs_with_the_units_env_and_cwd_and_is_killed_at_its_timeout() {
    let mut h = Harness::new();
    let mut spec = sh("job", "exec sleep 60", h.dir());
    spec.env = vec![("TOKEN".into(), "yes".into())];
    let check = r#"test "$TOKEN" = yes || exit 9; test -f flag || { echo "no flag yet" >&2; exit 1; }"#;
    spec.ready = Some(quick(ProbeCheck::Exec {
        argv: vec!["sh".into(), "-c".into(), check.into()],
    }));
    let unit = h.spawn(spec);
    unit.start().await;
    let error = poll("a failing exec probe", Duration::from_secs(10), || {
        unit.status().last_probe_error
    })
    .await;
    assert!(error.ends_with("exit code 1: no flag yet"), "{error}");
    assert_eq!(unit.status().state, UnitState::Starting);
    std::fs::write(h.dir().join("flag"), "").unwrap();
    unit.wait_ready(Duration::from_secs(10)).await.unwrap();

    let mut spec = sh("hung", "exec sleep 60", h.dir());
    spec.ready = Some(ProbeSpec {
        timeout: Duration::from_millis(200),
        ..quick(ProbeCheck::Exec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo $$ >> probe.pids; exec sleep 60".into(),
            ],
        })
    });
    let hung = h.spawn(spec);
    hung.start().await;
    let error = poll("a timed-out exec probe", Duration::from_secs(10), || {
        hung.status().last_probe_error
    })
    .await;
    assert!(error.ends_with("still running after 200ms; killed"), "{error}");
    let first: u32 = std::fs::read_to_string(h.dir().join("probe.pids"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    poll("the timed-out probe to be gone", Duration::from_secs(10), || {
        (!supervisor::alive(first)).then_some(())
    })
    .await;
    unit.stop().await;
    hung.stop().await;
}

#[tokio::test]
async fn a_failing_live_probe_restarts_the_unit_and_healthy_waits_for_it() {
    let mut h = Harness::new();
    let alive_file = h.dir().join("alive");
    std::fs::write(&alive_file, "").unwrap();
    let mut spec = sh("worker", "exec sleep 60", h.dir());
    // Room for a few restarts while the test puts the file back.
    spec.policy = fast(RestartMode::OnFailure, 50);
    spec.live = Some(quick(ProbeCheck::Exec {
        argv: vec!["test".into(), "-f".into(), "alive".into()],
    }));
    let unit = h.spawn(spec);
    unit.start().await;
    unit.wait_for(Condition::Healthy, Duration::from_secs(10))
        .await
        .unwrap();
    let first = unit.status().pid.unwrap();

    std::fs::remove_file(&alive_file).unwrap();
    let failed = h.until("worker", "probe_failed", is("probe_failed")).await;
    assert!(matches!(&failed.kind, EventKind::ProbeFailed { probe, .. } if probe == "live"));
    let exited = h.until("worker", "exited", is("exited")).await;
    assert!(matches!(exited.kind, EventKind::Exited { expected: true, .. }));
    h.until("worker", "restarting", is("restarting")).await;
    std::fs::write(&alive_file, "").unwrap();
    let s = poll("a healthy restart", Duration::from_secs(20), || {
        let s = unit.status();
        (s.healthy && s.pid.is_some_and(|p| p != first)).then_some(s)
    })
    .await;
    assert!(s.restarts >= 1);
    assert!(!supervisor::alive(first));
    let log = unit.log_path().to_path_buf();
    poll("the restart's reason in the log", Duration::from_secs(10), || {
        super::read(&log)
            .contains("live probe failed 2 times in a row")
            .then_some(())
    })
    .await;
    unit.stop().await;
}
