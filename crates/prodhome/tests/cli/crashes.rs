//! kill -9 of nodes and of the daemon itself: the supervisor restarts what
//! died, the next `up` takes over what a dead daemon left, and no committed
//! row is lost.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, poll};

use crate::BIN;

fn kill9(pid: u64) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).unwrap();
}

/// Waits until `node` was restarted at least `restarts` times and is ready.
fn wait_restarted(lab: &TestLab, node: &str, restarts: u64) -> Value {
    poll(
        &format!("{node} restarted and ready"),
        Duration::from_secs(60),
        || {
            let n = lab.node(node);
            (n["state"] == "ready" && n["restarts"].as_u64() >= Some(restarts)).then_some(n)
        },
    )
}

/// Inserts rows one transaction at a time through `prodhome psql`,
/// returning the ids whose COMMIT was acknowledged.
fn insert_batch(lab: &TestLab, ids: std::ops::Range<u32>) -> Vec<u32> {
    ids.filter(|id| {
        let sql = format!("insert into books (id, title) values ({id}, 'crash test')");
        lab.run(&["psql", "publisher", "-v", "ON_ERROR_STOP=1", "-Atc", &sql])
            .status
            .success()
    })
    .collect()
}

#[test]
fn kill9_of_a_subscriber_and_of_the_publisher_loses_no_committed_row() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    let mut acked = insert_batch(&lab, 0..30);

    let sub_pid = lab.node("subscriber1")["pid"].as_u64().unwrap();
    kill9(sub_pid);
    acked.extend(insert_batch(&lab, 30..60));
    let sub = wait_restarted(&lab, "subscriber1", 1);
    assert_ne!(sub["pid"].as_u64().unwrap(), sub_pid);
    assert!(sub["last_exit"].as_str().unwrap().contains("SIGKILL"), "{sub}");

    let pub_pid = lab.node("publisher")["pid"].as_u64().unwrap();
    kill9(pub_pid);
    // Inserts while the publisher is down fail and are not counted.
    acked.extend(insert_batch(&lab, 60..90));
    wait_restarted(&lab, "publisher", 1);
    acked.extend(insert_batch(&lab, 90..120));
    assert!(acked.len() >= 60, "too few inserts succeeded: {}", acked.len());

    let out = lab.run(&["verify", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", crate::text(&out));
    let present: Vec<u32> = lab
        .sql("subscriber1", "select id from books order by id")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    for id in &acked {
        assert!(
            present.contains(id),
            "acknowledged row {id} is missing on subscriber1"
        );
    }
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert!(
        events.contains(r#""unit":"publisher","kind":"exited","exit":{"code":null,"signal":9}"#),
        "{events}"
    );
    assert!(
        events.contains(r#""unit":"subscriber1","kind":"restarting""#),
        "{events}"
    );
}

#[test]
fn kill9_of_the_daemon_then_up_takes_over_without_duplicates_or_loss() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    lab.sql(
        "publisher",
        "insert into books (id, title) select g, 'x' from generate_series(1, 100) g",
    );
    let daemon: Value =
        serde_json::from_slice(&std::fs::read(lab.state().join("daemon.json")).unwrap()).unwrap();
    kill9(daemon["pid"].as_u64().unwrap());
    poll("the daemon to be gone", Duration::from_secs(10), || {
        (lab.try_status()?["phase"] == "stopped").then_some(())
    });
    // The servers outlive their daemon...
    assert!(
        lab.status()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "unsupervised")
    );

    // ...and the next up takes them over: one postmaster per node, no data lost.
    lab.up();
    let status = lab.status();
    let postmasters = lab
        .processes()
        .into_iter()
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            // A postmaster is `.../postgres -D DATA`: not initdb, pg_resetwal
            // or psql, whose command lines may mention the lab's directory too.
            (argv[0].ends_with("/postgres") && argv.get(1).is_some_and(|a| a == "-D"))
                .then_some(argv.join(" "))
        })
        .collect::<Vec<_>>();
    assert_eq!(postmasters.len(), 3, "{postmasters:?}\n{status}");
    assert_eq!(lab.sql("subscriber2", "select count(*) from books"), "100");
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert_eq!(events.matches(r#""kind":"adopted""#).count(), 3, "{events}");
    assert!(lab.run(&["verify"]).status.success());
}

/// A publisher and one subscriber, no hum: cheap enough to kill many times.
pub(crate) const TWO_NODES: &str = r#"name = "takeover"
[postgres.publisher]
[postgres.subscriber1]
[replication.books]
publisher = "publisher"
subscribers = ["subscriber1"]
schema = "schema.sql"
tables = ["books"]
"#;

fn daemon_pid(lab: &TestLab) -> u64 {
    let info: Value =
        serde_json::from_slice(&std::fs::read(lab.state().join("daemon.json")).unwrap()).unwrap();
    info["pid"].as_u64().unwrap()
}

/// Issue 10 item 4: `up -d` at once after `kill -9` of the daemon found the
/// dying daemon's lock still held, waited for it "to be ready" and failed.
#[test]
fn up_at_once_after_kill9_of_the_daemon_always_takes_over() {
    let lab = TestLab::new(BIN)
        .lab(TWO_NODES)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    for round in 0..10u32 {
        let sql = format!("insert into books (id, title) values ({round}, 'round {round}')");
        lab.sql("publisher", &sql);
        let old = daemon_pid(&lab);
        kill9(old);
        let out = lab.run(&["up", "-d", "--timeout", "120s"]);
        assert!(
            out.status.success(),
            "round {round}: up -d failed:\n{}",
            crate::text(&out)
        );
        assert_eq!(lab.status()["phase"], "ready", "round {round}");
        assert_ne!(
            daemon_pid(&lab),
            old,
            "round {round}: the killed daemon still answers"
        );
        let count = lab.sql("publisher", "select count(*) from books");
        assert_eq!(count, (round + 1).to_string(), "round {round}");
    }
    poll(
        "subscriber1 to have every round's row",
        Duration::from_secs(60),
        || (lab.sql("subscriber1", "select count(*) from books") == "10").then_some(()),
    );
}
