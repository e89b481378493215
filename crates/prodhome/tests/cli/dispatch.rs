//! The examples/dispatch walk-through, as a test, the way its README says:
//! the dispatcher's build directory on PATH, `up -d` in the example's
//! directory, kill the dispatcher, send pickups, see the alert and the
//! restart, and that no pickup was lost. A lab whose program is not on PATH
//! fails before it starts anything. And a crash loop that stops being
//! restarted and reaches a real webhook.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, free_port, poll};

use crate::{BIN, text};

const EXAMPLE: &str = include_str!("../../../../examples/dispatch/prodhome.toml");
const SCHEMA: &str = include_str!("../../../../examples/dispatch/schema.sql");

/// The directory cargo built prodhome and the dispatcher into: the README's
/// `target/release` or `target/debug`.
pub(crate) fn build_dir() -> PathBuf {
    let dir = Path::new(BIN).parent().unwrap().to_path_buf();
    let dispatcher = dir.join("dispatcher");
    assert!(
        dispatcher.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or build it: cargo build -p dispatcher)",
        dispatcher.display()
    );
    dir
}

/// `prodhome ARGS` with `dir` first on PATH, as `export PATH=...` in the
/// README does.
fn run_with_path(lab: &TestLab, dir: &Path, args: &[&str]) -> Output {
    let path = std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    lab.command().env("PATH", path).args(args).output().unwrap()
}

/// The example as it is, but on a free port: tests run in parallel, so the
/// README's fixed 18080 could be taken.
fn example_lab() -> TestLab {
    let toml = EXAMPLE.replace("18080", &free_port().to_string());
    TestLab::new(BIN).lab(&toml).file("schema.sql", SCHEMA)
}

fn service(lab: &TestLab, name: &str) -> Value {
    let status = lab.status();
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

#[test]
fn the_dispatch_walkthrough_loses_no_pickup() {
    let lab = example_lab();
    assert_success(
        &run_with_path(&lab, &build_dir(), &["up", "-d"]),
        "prodhome up -d",
    );
    assert_eq!(service(&lab, "dispatcher")["state"], "ready");

    lab.sql(
        "publisher",
        "insert into pickups (rider) select 'rider ' || g from generate_series(1, 100) g",
    );
    let pending = |lab: &TestLab| {
        lab.sql(
            "publisher",
            "select count(*) filter (where dispatched_at is null) from pickups",
        )
    };
    poll(
        "the first 100 pickups dispatched",
        Duration::from_secs(60),
        || (pending(&lab) == "0").then_some(()),
    );

    // Kill the dispatcher; send more pickups while it is down or restarting.
    let pid = service(&lab, "dispatcher")["pid"].as_i64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).unwrap();
    lab.sql(
        "publisher",
        "insert into pickups (rider) select 'late ' || g from generate_series(1, 50) g",
    );
    let restarted = poll("the dispatcher restarted", Duration::from_secs(60), || {
        let s = service(&lab, "dispatcher");
        (s["state"] == "ready" && s["restarts"].as_u64()? >= 1).then_some(s)
    });
    assert!(
        restarted["last_exit"].as_str().unwrap().contains("SIGKILL"),
        "{restarted}"
    );
    poll("every pickup dispatched", Duration::from_secs(60), || {
        (pending(&lab) == "0").then_some(())
    });
    assert_eq!(lab.sql("publisher", "select count(*) from pickups"), "150");

    // The alert: the command ran in the lab's directory with the event.
    let alerts = poll("the alert", Duration::from_secs(30), || {
        std::fs::read_to_string(lab.dir().join("alerts.log")).ok()
    });
    let alert: Value = serde_json::from_str(alerts.lines().next().unwrap()).unwrap();
    assert_eq!(alert["unit"], "dispatcher", "{alert}");
    assert_eq!(alert["alert"], "down", "{alert}");
    // The replica has every pickup too.
    assert!(lab.run(&["verify"]).status.success());
    let token = String::from_utf8(lab.run(&["secret", "dispatch_token"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(!alerts.contains(&token) && !text(&lab.run(&["status", "--json"])).contains(&token));
}

#[test]
fn the_example_without_the_dispatcher_on_path_fails_before_it_starts_anything() {
    let lab = example_lab();
    let nowhere = lab.dir().join("empty");
    std::fs::create_dir(&nowhere).unwrap();
    let out = lab
        .command()
        .env("PATH", format!("{}:/usr/bin:/bin", nowhere.display()))
        .args(["up", "-d"])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let line = EXAMPLE.lines().position(|l| l.starts_with("command = ")).unwrap() + 1;
    let want =
        format!("prodhome.toml:{line}:11: service.dispatcher.command: no program \"dispatcher\" on PATH");
    assert!(all.contains(&want), "expected {want:?} in:\n{all}");
    assert!(!lab.state().exists(), "state was created");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
}

#[test]
fn a_crash_looping_service_stops_being_restarted_and_raises_the_alert() {
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = hook.local_addr().unwrap().port();
    let lab = TestLab::new(BIN).lab(&format!(
        r#"name = "loop"
[postgres.db]
[service.flaky]
command = ["sh", "-c", "test -f crash && exit 1; exec sleep 600"]
restart = "always"
max_restarts = 2
[alert]
webhook = "http://127.0.0.1:{hook_port}/hook"
min_interval = "1s"
"#
    ));
    lab.up();
    std::fs::write(lab.dir().join("crash"), "").unwrap();
    assert_success(&lab.run(&["restart", "flaky"]), "restart");
    let state = poll("flaky given up on", Duration::from_secs(60), || {
        let s = service(&lab, "flaky");
        (s["state"] == "failed").then_some(s)
    });
    assert!(state["restarts"].as_u64().unwrap() >= 2, "{state}");

    // The webhook receives a POST whose body is the crash-loop alert.
    hook.set_nonblocking(true).unwrap();
    let body = poll(
        "a crash_loop alert at the webhook",
        Duration::from_secs(30),
        || {
            let (mut conn, _) = hook.accept().ok()?;
            conn.set_nonblocking(false).ok()?;
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the body is complete (Content-Length) or the peer stops.
            for _ in 0..100 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let _ =
                std::io::Write::write_all(&mut conn, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            let text = String::from_utf8_lossy(&request).into_owned();
            let body = text.split_once("\r\n\r\n")?.1.to_string();
            let alert: Value = serde_json::from_str(&body).ok()?;
            (alert["alert"] == "crash_loop").then_some(alert)
        },
    );
    assert_eq!(body["unit"], "flaky");
    // The alert is recorded once delivered.
    poll(
        "the crash loop and its delivered alert in the event log",
        Duration::from_secs(30),
        || {
            let events = std::fs::read_to_string(lab.state().join("events.jsonl")).ok()?;
            let delivered = events
                .lines()
                .any(|l| l.contains(r#""kind":"alert""#) && l.contains(r#""delivered":true"#));
            (events.contains(r#""kind":"crash_loop""#) && delivered).then_some(())
        },
    );
}
