//! `status` tells the truth while faults are in force (issue 17, item 6):
//! a paused node reads `paused`, a link under a fault says so on its row,
//! and `status`, `status --json`, `chaos list` and `events` agree. Also the
//! small things: link targets that need no shell quoting, `logs` in time
//! order. A lab unlike the seed: other names, another table.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

const LAB: &str = r#"
name = "ledgerlab"

[postgres.origin]
[postgres.mirror_a]
[postgres.mirror_b]

[replication.entries]
publisher = "origin"
subscribers = ["mirror_a", "mirror_b"]
schema = "entries.sql"
tables = ["entries"]
"#;

const SCHEMA: &str = "create table entries (id bigint primary key, memo text not null);\n";

fn lab() -> TestLab {
    TestLab::new(BIN).lab(LAB).file("entries.sql", SCHEMA)
}

fn node_state(status: &Value, name: &str) -> String {
    let nodes = status["nodes"].as_array().expect("nodes");
    let node = nodes.iter().find(|n| n["name"] == name).expect("node in status");
    node["state"].as_str().unwrap_or_default().to_string()
}

fn link(status: &Value, subscriber: &str) -> Value {
    let links = status["replication"].as_array().expect("replication");
    links
        .iter()
        .find(|l| l["subscriber"] == subscriber)
        .cloned()
        .expect("link in status")
}

fn json(lab: &TestLab, args: &[&str]) -> Value {
    let out = lab.run(args);
    assert_success(&out, &args.join(" "));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {}", text(&out)))
}

#[test]
fn a_paused_subscriber_reads_paused_everywhere_then_ready_again() {
    let lab = lab();
    lab.up();
    // `up -d` returned: every subscription is streaming, not just set up.
    let status = lab.status();
    for sub in ["mirror_a", "mirror_b"] {
        assert_eq!(link(&status, sub)["state"], "streaming", "{status:#}");
    }

    assert_success(
        &lab.run(&["chaos", "pause", "mirror_a", "--for", "5s"]),
        "chaos pause",
    );
    let status = lab.status();
    assert_eq!(node_state(&status, "mirror_a"), "paused", "{status:#}");
    assert_eq!(node_state(&status, "mirror_b"), "ready", "{status:#}");
    let row = link(&status, "mirror_a");
    assert!(
        row["fault"]
            .as_str()
            .unwrap_or_default()
            .contains("pause mirror_a"),
        "{row:#}"
    );
    let listed = json(&lab, &["chaos", "list", "--json"]);
    let listed = listed.as_array().expect("chaos list --json is a list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["fault"]["kind"], "pause");
    assert_eq!(listed[0]["fault"]["target"]["node"], "mirror_a");
    let table = text(&lab.run(&["status"]));
    let line = table
        .lines()
        .find(|l| l.starts_with("mirror_a "))
        .unwrap_or_default();
    assert!(line.contains("paused"), "{table}");

    poll(
        "mirror_a to be ready after its pause",
        Duration::from_secs(60),
        || {
            let status = lab.try_status()?;
            (node_state(&status, "mirror_a") == "ready" && link(&status, "mirror_a")["fault"].is_null())
                .then_some(())
        },
    );
    assert!(text(&lab.run(&["chaos", "list"])).contains("no faults in force"));

    // Every unit's log, in time order.
    let out = lab.run(&["logs"]);
    assert_success(&out, "logs");
    let stamps: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(" | ").map(|(_, rest)| rest.to_string()))
        .filter(|rest| rest.len() >= 23 && rest.as_bytes()[4] == b'-' && rest.as_bytes()[10] == b' ')
        .map(|rest| rest[..23].to_string())
        .collect();
    assert!(stamps.len() > 10, "too few log lines with a time: {stamps:?}");
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "logs not in time order: {stamps:?}"
    );
}

#[test]
fn link_faults_show_on_their_replication_row_and_in_events() {
    let lab = lab();
    lab.up();
    // The target as one plain argument: no shell, no quoting, no `->`.
    assert_success(
        &lab.run(&[
            "chaos",
            "latency",
            "origin:mirror_b",
            "--delay",
            "200ms",
            "--for",
            "60s",
        ]),
        "chaos latency origin:mirror_b",
    );
    let status = lab.status();
    let row = link(&status, "mirror_b");
    assert!(
        row["fault"]
            .as_str()
            .unwrap_or_default()
            .starts_with("latency 200ms"),
        "{row:#}"
    );
    assert!(link(&status, "mirror_a")["fault"].is_null(), "{status:#}");
    let table = text(&lab.run(&["status"]));
    assert!(table.contains("latency 200ms"), "{table}");

    assert_success(
        &lab.run(&["chaos", "partition", "origin:mirror_a"]),
        "chaos partition",
    );
    assert_eq!(link(&lab.status(), "mirror_a")["state"], "cut");

    // The dashboard reads the same words as `status`.
    assert_success(&lab.run(&["chaos", "pause", "mirror_b"]), "chaos pause");
    let api = lab.status()["api"].as_str().unwrap_or_default().to_string();
    let profile = lab.dir().join("chromium");
    let dom = testkit::chromium::run(&profile, "1280,800", 3000, &["--dump-dom"], &format!("{api}/"));
    assert!(
        dom.contains("mirror_b <tspan>paused"),
        "no paused node row:\n{dom}"
    );
    assert!(
        dom.contains("mirror_a cut (partition)"),
        "no cut link in the status bar:\n{dom}"
    );
    assert_success(&lab.run(&["chaos", "heal"]), "chaos heal");
    poll("mirror_a streaming after heal", Duration::from_secs(60), || {
        let status = lab.try_status()?;
        let row = link(&status, "mirror_a");
        (row["state"] == "streaming" && row["fault"].is_null()).then_some(())
    });

    let events = json(&lab, &["events", "--json"]);
    let faults: Vec<(String, String, String)> = events
        .as_array()
        .expect("events --json is a list")
        .iter()
        .filter(|e| e["kind"] == "fault")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("fault"), s("target"), s("phase"))
        })
        .collect();
    for want in [
        ("latency", "origin->mirror_b", "on"),
        ("partition", "origin->mirror_a", "off"),
    ] {
        let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
        assert!(faults.contains(&want), "{want:?} not in {faults:?}");
    }
    follow_sees_a_new_fault(&lab);
    let recent = text(&lab.run(&["events", "--since", "10m"]));
    assert!(
        recent.contains("fault") && recent.contains("origin->mirror_b"),
        "{recent}"
    );

    // With the daemon gone, events come from the event log on disk.
    assert_success(&lab.run(&["down"]), "down");
    let offline = text(&lab.run(&["events"]));
    assert!(offline.contains("partition"), "{offline}");
}

/// Kills the child it holds when dropped, so a failed test leaves no
/// `events -f` behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `events -f --json` prints a fault applied after it started, as one JSON
/// object a line.
fn follow_sees_a_new_fault(lab: &TestLab) {
    use std::io::BufRead;
    let child = lab
        .command()
        .args(["events", "-f", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn events -f");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The first line is an old event: follow is reading.
    rx.recv_timeout(Duration::from_secs(30))
        .expect("events -f printed nothing");
    assert_success(
        &lab.run(&["chaos", "stall", "clients:origin", "--for", "1s"]),
        "chaos stall",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("events -f did not print the stall");
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if event["fault"] == "stall" {
            assert_eq!(event["target"], "clients->origin");
            break;
        }
    }
    drop(child);
}
