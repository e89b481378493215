//! A replication worker that fails long after `up` (a row put on a
//! subscriber by hand, then the same key inserted on the publisher) is named
//! within seconds: the link's state in `status` is `error` with the
//! subscriber's own reason and what to do, one event says so, and once the
//! cause is gone the link streams again with a recovery event.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, poll};

use crate::{BIN, text};

const LAB: &str = r#"
name = "fulfil"

[postgres.hq]
[postgres.branch1]
[postgres.branch2]

[replication.dispatch]
publisher = "hq"
subscribers = ["branch1", "branch2"]
schema = "orders.sql"
tables = ["orders"]
"#;

const SCHEMA: &str = "create table orders (id int primary key, item text not null);\n";

/// The link of `subscriber` in a status.
fn link(status: &Value, subscriber: &str) -> Value {
    status["replication"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["subscriber"] == subscriber))
        .cloned()
        .unwrap_or_else(|| panic!("no link to {subscriber} in {status}"))
}

/// The event log's events of `kind`, as JSON lines.
fn events(lab: &TestLab, kind: &str) -> Vec<Value> {
    let log = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[test]
fn an_apply_conflict_long_after_up_is_named_in_status_and_events_and_clears_when_fixed() {
    let lab = TestLab::new(BIN).lab(LAB).file("orders.sql", SCHEMA);
    lab.up();
    lab.sql("hq", "insert into orders values (1, 'first')");
    poll("order 1 on branch1", Duration::from_secs(60), || {
        (lab.sql("branch1", "select count(*) from orders") == "1").then_some(())
    });

    lab.sql("branch1", "insert into orders values (7, 'by hand')");
    lab.sql("hq", "insert into orders values (7, 'from hq')");
    let broken = poll("branch1's link in state error", Duration::from_secs(60), || {
        let status = lab.try_status()?;
        let l = link(&status, "branch1");
        (l["state"] == "error").then_some(l)
    });
    let error = broken["error"].as_str().unwrap_or_default().to_string();
    for want in [
        "duplicate key",
        "orders_pkey",
        "23505",
        "Key (id)=(7)",
        "branch1",
        "SKIP",
    ] {
        assert!(
            error.contains(want),
            "expected {want:?} in the link's error: {broken}"
        );
    }
    assert_ne!(link(&lab.status(), "branch2")["state"], "error");
    let table = lab.run(&["status"]);
    assert!(text(&table).contains("duplicate key"), "{}", text(&table));

    let raised = poll("a replication_error event", Duration::from_secs(30), || {
        let found = events(&lab, "replication_error");
        (!found.is_empty()).then_some(found)
    });
    let event = &raised[0];
    assert_eq!(event["unit"], "branch1", "{event}");
    assert_eq!(event["subscription"], "dispatch_branch1", "{event}");
    assert_eq!(event["sqlstate"], "23505", "{event}");
    assert_eq!(event["table"], "public.orders", "{event}");
    assert!(
        event["message"]
            .as_str()
            .unwrap_or_default()
            .contains("duplicate key"),
        "{event}"
    );

    lab.sql("branch1", "delete from orders where id = 7");
    poll("branch1's link streaming again", Duration::from_secs(90), || {
        let l = link(&lab.try_status()?, "branch1");
        (l["state"] == "streaming" && l.get("error").is_none()).then_some(())
    });
    poll("a replication_recovered event", Duration::from_secs(30), || {
        let found = events(&lab, "replication_recovered");
        found.iter().any(|e| e["unit"] == "branch1").then_some(())
    });
    // The worker failed again and again until the fix: one event said so.
    assert_eq!(events(&lab, "replication_error").len(), 1, "{raised:?}");
    assert_eq!(
        lab.sql("branch1", "select item from orders where id = 7"),
        "from hq"
    );
    let out = lab.run(&["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("replication dispatch: converged"),
        "{}",
        text(&out)
    );
}

/// A column dropped on a subscriber by hand: the link says which column is
/// missing and to create it; adding it back lets the worker catch up.
#[test]
fn a_column_missing_on_a_subscriber_is_named_and_clears_once_created() {
    let lab = TestLab::new(BIN).lab(LAB).file("orders.sql", SCHEMA);
    lab.up();
    lab.sql("branch2", "alter table orders drop column item");
    lab.sql("hq", "insert into orders values (3, 'crate')");
    let broken = poll("branch2's link in state error", Duration::from_secs(60), || {
        let l = link(&lab.try_status()?, "branch2");
        (l["state"] == "error").then_some(l)
    });
    let error = broken["error"].as_str().unwrap_or_default();
    for want in [
        "is missing replicated column",
        "item",
        "55000",
        "create",
        "prodhome psql branch2",
    ] {
        assert!(
            error.contains(want),
            "expected {want:?} in the link's error: {broken}"
        );
    }
    assert_ne!(link(&lab.status(), "branch1")["state"], "error");

    lab.sql("branch2", "alter table orders add column item text");
    poll("branch2's link streaming again", Duration::from_secs(90), || {
        let l = link(&lab.try_status()?, "branch2");
        (l["state"] == "streaming" && l.get("error").is_none()).then_some(())
    });
    assert_eq!(
        lab.sql("branch2", "select item from orders where id = 3"),
        "crate"
    );
    let raised = events(&lab, "replication_error");
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["table"], "public.orders", "{raised:?}");
}
