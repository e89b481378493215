//! App services beside the nodes: start order, readiness that means
//! listening, restarts, control commands, secrets kept out of every file.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, free_port, poll};

use crate::{BIN, text};

fn events(lab: &TestLab) -> Vec<Value> {
    std::fs::read_to_string(lab.state().join("events.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// When `unit` first had event `kind`.
fn first(events: &[Value], unit: &str, kind: &str) -> i64 {
    events
        .iter()
        .find(|e| e["unit"] == unit && e["kind"] == kind)
        .and_then(|e| e["ts_ns"].as_i64())
        .unwrap_or_else(|| panic!("no {kind} event for {unit}"))
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[test]
fn services_start_in_dependency_order_and_are_ready_only_when_listening() {
    let (slow, web) = (free_port(), free_port());
    let lab = TestLab::new(BIN).lab(&format!(
        r#"name = "apps"
[postgres.db]
[secret.token]
length = 40

[service.slow]
command = ["sh", "-c", "sleep 2; exec python3 -m http.server {slow} --bind 127.0.0.1"]
depends_on = {{ db = "ready" }}
ready = {{ tcp = {slow} }}

[service.web]
command = ["python3", "-m", "http.server", "{web}", "--bind", "127.0.0.1"]
env = {{ DATABASE_URL = "${{postgres.db.url}}", TOKEN = "${{secret.token}}" }}
depends_on = {{ slow = "healthy" }}
ready = {{ http = "http://127.0.0.1:{web}/" }}

[service.logger]
command = ["sh", "-c", "echo started; exec sleep 600"]
depends_on = {{ web = "started" }}
"#
    ));
    lab.up();
    let status = lab.status();
    for name in ["slow", "web", "logger"] {
        assert_eq!(service(&status, name)["state"], "ready", "{status}");
        assert_eq!(service(&status, name)["kind"], "service");
    }
    let ev = events(&lab);
    // Not ready before it listens: the port opens 2 s after start.
    assert!(first(&ev, "slow", "ready") - first(&ev, "slow", "started") >= 2_000_000_000);
    assert!(first(&ev, "db", "ready") <= first(&ev, "slow", "started"));
    assert!(first(&ev, "slow", "ready") <= first(&ev, "web", "started"));
    assert!(first(&ev, "web", "started") <= first(&ev, "logger", "started"));

    // Control: restart and stop/start by name.
    let before = service(&status, "web")["pid"].as_u64().unwrap();
    assert_success(&lab.run(&["restart", "web"]), "restart web");
    let after = poll("web back with a new pid", Duration::from_secs(30), || {
        let s = service(&lab.status(), "web").clone();
        (s["state"] == "ready" && s["pid"].as_u64() != Some(before)).then_some(s)
    });
    assert_eq!(after["restarts"], 1);
    assert_success(&lab.run(&["stop", "logger"]), "stop logger");
    assert_eq!(service(&lab.status(), "logger")["state"], "stopped");
    assert_success(&lab.run(&["start", "logger"]), "start logger");
    poll("logger running again", Duration::from_secs(30), || {
        (service(&lab.status(), "logger")["state"] == "ready").then_some(())
    });
    let out = lab.run(&["restart", "nobody"]);
    assert!(
        !out.status.success() && text(&out).contains("no node or service \"nobody\""),
        "{}",
        text(&out)
    );

    // Logs: one service's, and all of them interleaved with a name prefix.
    assert!(text(&lab.run(&["logs", "logger"])).contains("started"));
    let all = text(&lab.run(&["logs"]));
    assert!(all.contains("logger | started"), "{all}");

    // The secret: printed on request only, never in any file prodhome wrote.
    let token = String::from_utf8(lab.run(&["secret", "token"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(token.len(), 40);
    let printed = text(&lab.run(&["status"])) + &text(&lab.run(&["status", "--json"]));
    assert!(!printed.contains(&token));
    assert_success(&lab.run(&["down"]), "down");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
    let mut stack = vec![lab.state()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("secrets.json") {
                let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
                assert!(!content.contains(&token), "the secret is in {}", path.display());
            }
        }
    }
}

#[test]
fn a_failing_liveness_probe_restarts_the_service_and_a_bad_service_fails_up_with_its_log() {
    let port = free_port();
    let lab = TestLab::new(BIN).lab(&format!(
        r#"name = "live"
[postgres.db]
[service.checked]
command = ["sh", "-c", "touch alive; exec python3 -m http.server {port} --bind 127.0.0.1"]
ready = {{ tcp = {port} }}
live = {{ exec = ["test", "-f", "alive"], interval = "200ms", threshold = 2 }}
restart = "always"
"#
    ));
    lab.up();
    let pid = service(&lab.status(), "checked")["pid"].as_u64().unwrap();
    std::fs::remove_file(lab.dir().join("alive")).unwrap();
    poll(
        "the service restarted by its live probe",
        Duration::from_secs(30),
        || {
            let s = service(&lab.status(), "checked").clone();
            (s["restarts"].as_u64()? >= 1 && s["state"] == "ready" && s["pid"].as_u64() != Some(pid))
                .then_some(())
        },
    );
    assert!(
        events(&lab)
            .iter()
            .any(|e| e["unit"] == "checked" && e["kind"] == "probe_failed" && e["probe"] == "live")
    );
    assert_success(&lab.run(&["down"]), "down");

    let broken = TestLab::new(BIN).lab(
        "name = \"broken\"\n[postgres.db]\n[service.bad]\ncommand = [\"sh\", \"-c\", \"echo cannot find my config >&2; exit 3\"]\nready = { tcp = 9 }\nmax_restarts = 2\n",
    );
    let out = broken.run(&["up", "-d", "--timeout", "60s"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("service bad did not become ready"), "{all}");
    assert!(all.contains("cannot find my config"), "{all}");
    assert!(
        broken.processes().is_empty(),
        "left running: {:?}",
        broken.processes()
    );
}

#[test]
fn a_service_left_by_a_killed_daemon_is_replaced_not_duplicated() {
    let port = free_port();
    let lab = TestLab::new(BIN).lab(&format!(
        "name = \"left\"\n[postgres.db]\n[service.web]\ncommand = [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\nready = {{ tcp = {port} }}\n"
    ));
    lab.up();
    let old = service(&lab.status(), "web")["pid"].as_u64().unwrap();
    let daemon: Value =
        serde_json::from_slice(&std::fs::read(lab.state().join("daemon.json")).unwrap()).unwrap();
    let pid = nix::unistd::Pid::from_raw(daemon["pid"].as_i64().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL).unwrap();
    poll("the daemon to be gone", Duration::from_secs(10), || {
        (lab.try_status()?["phase"] == "stopped").then_some(())
    });
    lab.up();
    let new = service(&lab.status(), "web")["pid"].as_u64().unwrap();
    assert_ne!(new, old);
    assert!(
        !std::path::Path::new(&format!("/proc/{old}")).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{old}/stat")).unwrap_or_default();
            stat.contains(") Z")
        },
        "the old service still runs"
    );
}
