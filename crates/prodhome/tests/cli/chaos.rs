//! Faults through `prodhome chaos`: each has an observable effect and a
//! clean undo, and nothing is left broken by heal, --for or down.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

fn link<'a>(status: &'a Value, subscriber: &str) -> &'a Value {
    status["replication"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subscriber"] == subscriber)
        .unwrap()
}

fn lag(lab: &TestLab, subscriber: &str) -> Option<i64> {
    link(&lab.status(), subscriber)["lag_bytes"].as_i64()
}

#[test]
fn a_paused_subscriber_falls_behind_and_catches_up_when_resumed() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    assert_success(&lab.run(&["chaos", "pause", "subscriber1"]), "chaos pause");
    let listed = text(&lab.run(&["chaos", "list"]));
    assert!(listed.contains("pause subscriber1"), "{listed}");
    // Writes go on; the paused subscriber confirms none of them.
    let mut id = 0;
    poll(
        "subscriber1's lag to grow past 1 MB",
        Duration::from_secs(60),
        || {
            id += 1;
            let sql = format!(
                "insert into books (id, title) select g, repeat('x', 500) from generate_series({}, {}) g",
                id * 2000,
                id * 2000 + 1999
            );
            lab.sql("publisher", &sql);
            (lag(&lab, "subscriber1")? > 1_000_000).then_some(())
        },
    );
    // The other subscriber keeps up meanwhile; the paused one stays behind.
    poll("subscriber2 to keep up", Duration::from_secs(60), || {
        (lag(&lab, "subscriber2")? == 0).then_some(())
    });
    assert!(lag(&lab, "subscriber1").unwrap() > 1_000_000);
    assert_success(&lab.run(&["chaos", "heal"]), "chaos heal");
    poll("subscriber1 to catch up", Duration::from_secs(60), || {
        (lag(&lab, "subscriber1")? == 0).then_some(())
    });
    assert!(lab.run(&["verify"]).status.success());
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert!(
        events.contains(r#""kind":"fault","fault":"pause","target":"subscriber1","phase":"on""#),
        "{events}"
    );
    assert!(
        events.contains(r#""kind":"fault","fault":"pause","target":"subscriber1","phase":"off""#),
        "{events}"
    );
}

#[test]
fn a_partitioned_replication_link_stops_replication_and_heal_restores_it() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    assert_success(
        &lab.run(&["chaos", "partition", "publisher->subscriber2", "--for", "60s"]),
        "partition",
    );
    poll("the link to show as cut", Duration::from_secs(30), || {
        (link(&lab.status(), "subscriber2")["state"] == "cut").then_some(())
    });
    lab.sql(
        "publisher",
        "insert into books (id, title) values (42, 'cut off')",
    );
    poll(
        "subscriber1 (not partitioned) to get the row",
        Duration::from_secs(30),
        || (lab.sql("subscriber1", "select count(*) from books where id = 42") == "1").then_some(()),
    );
    assert_eq!(
        lab.sql("subscriber2", "select count(*) from books where id = 42"),
        "0"
    );
    assert!(lag(&lab, "subscriber2").unwrap() > 0);

    assert_success(&lab.run(&["chaos", "heal"]), "heal");
    poll(
        "the row to reach subscriber2 after heal",
        Duration::from_secs(60),
        || (lab.sql("subscriber2", "select count(*) from books where id = 42") == "1").then_some(()),
    );
    assert!(text(&lab.run(&["chaos", "list"])).contains("no faults in force"));
}

#[test]
fn a_fault_with_for_undoes_itself_and_down_leaves_nothing_paused() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    assert_success(
        &lab.run(&["chaos", "stall", "clients->publisher", "--for", "1s"]),
        "stall",
    );
    poll("the stall to end by itself", Duration::from_secs(30), || {
        text(&lab.run(&["chaos", "list"]))
            .contains("no faults in force")
            .then_some(())
    });
    let out = lab.run(&["chaos", "kill", "subscriber1", "--for", "1s"]);
    assert!(
        !out.status.success() && text(&out).contains("takes no --for"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["chaos", "pause", "nobody"]);
    assert!(
        !out.status.success() && text(&out).contains("no target nobody"),
        "{}",
        text(&out)
    );
    // A native node shares the host's loopback: no network to cut it off.
    let out = lab.run(&["chaos", "partition", "subscriber1", "--network"]);
    assert!(
        !out.status.success() && text(&out).contains("not containers"),
        "{}",
        text(&out)
    );

    assert_success(&lab.run(&["chaos", "pause", "publisher"]), "pause");
    assert_success(&lab.run(&["down"]), "down");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
}

#[test]
fn latency_on_the_client_path_shows_in_hums_latency() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    let proxy = lab.node("publisher")["proxy_port"].as_u64().unwrap();
    let env = String::from_utf8(lab.run(&["env", "publisher"]).stdout).unwrap();
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("export PGPASSWORD="))
        .unwrap()
        .to_string();
    let url = format!("postgresql://postgres:{password}@127.0.0.1:{proxy}/postgres");
    let p50 = |lab: &TestLab| -> f64 {
        let out = lab.run(&[
            "hum",
            "--url",
            &url,
            "--workload",
            "books",
            "--rate",
            "20",
            "--duration",
            "3s",
            "--json",
        ]);
        assert_success(&out, "hum");
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        summary["latency_ms"]["p50"].as_f64().unwrap()
    };
    let before = p50(&lab);
    assert_success(
        &lab.run(&[
            "chaos",
            "latency",
            "clients->publisher",
            "--delay",
            "100ms",
            "--jitter",
            "0ms",
        ]),
        "latency",
    );
    let during = p50(&lab);
    // One round trip per transaction, delayed both ways.
    assert!(
        during >= 200.0 && during >= before + 150.0,
        "p50 before {before} ms, during {during} ms"
    );
    assert_success(&lab.run(&["chaos", "heal"]), "heal");
}
