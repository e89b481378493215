//! The soak: two minutes of load and every kind of fault, then the proof.

use serde_json::Value;
use testkit::{TestLab, assert_success};

use crate::{BIN, text};

const ALL_FAULTS: &str = "kill,stop,pause,restart,latency,bandwidth,stall,reset,partition";

#[test]
fn the_same_seed_gives_the_same_fault_schedule() {
    let lab = TestLab::quiet(BIN);
    let schedule = |seed: &str| -> Value {
        let out = lab.run(&[
            "soak",
            "--duration",
            "2m",
            "--seed",
            seed,
            "--faults",
            ALL_FAULTS,
            "--dry-run",
            "--json",
        ]);
        assert_success(&out, "soak --dry-run");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["schedule"].clone()
    };
    let first = schedule("11");
    assert!(first.as_array().unwrap().len() >= 9, "{first}");
    assert_eq!(first, schedule("11"));
    assert_ne!(first, schedule("12"));
}

#[test]
fn a_two_minute_soak_with_every_fault_loses_nothing_acknowledged_and_converges() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    let out = lab.run(&[
        "soak",
        "--duration",
        "2m",
        "--seed",
        "5",
        "--faults",
        ALL_FAULTS,
        "--rate",
        "100",
        "--json",
    ]);
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert_eq!(verdict["converged"], true, "{verdict}");
    assert!(verdict["acknowledged"].as_u64().unwrap() > 1000, "{verdict}");
    let faults = verdict["faults"].as_object().unwrap();
    let kinds = faults.keys().cloned().collect::<Vec<_>>().join(",");
    assert!(faults.len() >= 7, "too few kinds applied: {kinds}");
    assert!(verdict["max_converge_ms"].as_u64().is_some());
    // Every fault was undone: nothing left in force, every node ready.
    assert!(text(&lab.run(&["chaos", "list"])).contains("no faults in force"));
    assert!(
        lab.status()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "ready")
    );
}

/// The verdict's fields, all there whatever the outcome.
const VERDICT_FIELDS: [&str; 14] = [
    "ok",
    "seed",
    "duration_s",
    "faults",
    "skipped_faults",
    "transactions",
    "errors",
    "acknowledged",
    "lost",
    "converged",
    "max_converge_ms",
    "restarts",
    "schedule",
    "reasons",
];

fn verdict_of(out: &std::process::Output) -> Value {
    let verdict: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("no verdict: {}", text(out)));
    for field in VERDICT_FIELDS {
        assert!(verdict.get(field).is_some(), "no {field} in {verdict}");
    }
    verdict
}

#[test]
fn a_soak_on_a_lab_without_books_creates_it_on_every_subscriber_and_ends_ok() {
    let lab = TestLab::new(BIN).lab(crate::prodhome_tables::ALL_TABLES);
    lab.up();
    let out = lab.run(&[
        "soak",
        "--duration",
        "20s",
        "--seed",
        "3",
        "--rate",
        "50",
        "--json",
    ]);
    let verdict = verdict_of(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["converged"], true, "{verdict}");
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert_eq!(verdict["reasons"], serde_json::json!([]), "{verdict}");
    assert!(verdict["acknowledged"].as_u64().unwrap() > 0, "{verdict}");
    let tables = &verdict["proof"]["replications"][0]["tables"];
    let books = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.books")
        .unwrap_or_else(|| panic!("books is not published: {tables}"));
    let rows = books["publisher"]["rows"].as_u64().unwrap();
    assert!(rows > 0, "{books}");
    for side in books["subscribers"].as_array().unwrap() {
        assert_eq!(side["rows"], rows, "{books}");
    }
}

#[test]
fn a_soak_whose_tables_leave_books_out_keeps_it_off_subscribers_and_a_diverged_one_fails() {
    let lab = TestLab::new(BIN)
        .lab(
            r#"name = "orders"
[postgres.main]
[postgres.replica_a]
[postgres.replica_b]
[replication.orders]
publisher = "main"
subscribers = ["replica_a", "replica_b"]
schema = "schema.sql"
tables = ["orders"]
"#,
        )
        .file(
            "schema.sql",
            "create table orders (id bigint primary key, total numeric);\n",
        );
    lab.up();
    lab.sql(
        "main",
        "insert into orders select g, g * 1.5 from generate_series(1, 100) g",
    );
    let out = lab.run(&[
        "soak",
        "--duration",
        "10s",
        "--seed",
        "4",
        "--faults",
        "latency",
        "--json",
    ]);
    let verdict = verdict_of(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert!(verdict["acknowledged"].as_u64().unwrap() > 0, "{verdict}");
    assert_ne!(lab.sql("main", "select count(*) from books"), "0");
    for replica in ["replica_a", "replica_b"] {
        assert_eq!(
            lab.sql(replica, "select to_regclass('books') is null"),
            "t",
            "{replica}"
        );
    }

    // A subscriber that diverges before the proof: a verdict, not an error.
    lab.sql("replica_b", "insert into orders values (1000, 0)");
    let out = lab.run(&[
        "soak",
        "--duration",
        "5s",
        "--seed",
        "4",
        "--faults",
        "latency",
        "--json",
    ]);
    let verdict = verdict_of(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert_eq!(verdict["converged"], false, "{verdict}");
    assert_eq!(verdict["lost"], 0, "{verdict}");
    let reasons = verdict["reasons"].to_string();
    assert!(
        reasons.contains("orders") && reasons.contains("replica_b") && reasons.contains("101 rows"),
        "{reasons}"
    );
    assert!(!text(&out).contains("error:"), "{}", text(&out));
}
