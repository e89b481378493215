//! DDL follows the publisher (issue 11): schema changes made by plain psql
//! on a publisher reach every subscriber, rows written right after an ADD
//! COLUMN arrive intact, `verify` reports schema drift made by hand, and
//! `ddl = "manual"` leaves subscribers alone. Labs unlike the seed: other
//! node names, no schema file or one of the user's own.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

const ALL: &str = r#"name = "ledger"
[postgres.origin]
[postgres.east]
[postgres.west]
[replication.all]
publisher = "origin"
subscribers = ["east", "west"]
tables = "all"
"#;

const SUBS: [&str; 2] = ["east", "west"];
const LIMIT: Duration = Duration::from_secs(60);

/// `psql NODE -Atc SQL`, `None` when it fails (a table not there yet).
fn try_sql(lab: &TestLab, node: &str, sql: &str) -> Option<String> {
    let out = lab.run(&["psql", node, "-v", "ON_ERROR_STOP=1", "-Atc", sql]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Waits until `sql` answers `want` on every subscriber.
fn converges(lab: &TestLab, what: &str, sql: &str, want: &str) {
    for sub in SUBS {
        poll(&format!("{what} on {sub}"), LIMIT, || {
            (try_sql(lab, sub, sql).as_deref() == Some(want)).then_some(())
        });
    }
}

fn verify(lab: &TestLab, timeout: &str) -> (bool, Value, String) {
    let out = lab.run(&["verify", "--timeout", timeout, "--json"]);
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), proof, text(&out))
}

#[test]
fn ddl_by_psql_on_the_publisher_converges_on_every_subscriber_and_verifies() {
    let lab = TestLab::new(BIN).lab(ALL);
    lab.up();
    // A new table with rows, in one query string with its inserts.
    lab.sql(
        "origin",
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL); \
         INSERT INTO accounts SELECT g, 'o' || g FROM generate_series(1, 50) g",
    );
    converges(
        &lab,
        "the new table's rows",
        "select count(*) from accounts",
        "50",
    );

    // An added column, with values written right after it.
    lab.sql(
        "origin",
        "ALTER TABLE accounts ADD COLUMN balance numeric NOT NULL DEFAULT 0",
    );
    lab.sql(
        "origin",
        "INSERT INTO accounts SELECT g, 'n' || g, g * 10 FROM generate_series(51, 60) g",
    );
    converges(
        &lab,
        "rows carrying the new column",
        "select count(*), sum(balance) from accounts",
        "60|5550",
    );

    // A renamed column, indexes made and dropped (one CONCURRENTLY), an
    // enum type and a value added to it.
    lab.sql("origin", "ALTER TABLE accounts RENAME COLUMN owner TO holder");
    lab.sql("origin", "CREATE INDEX accounts_holder ON accounts (holder)");
    lab.sql(
        "origin",
        "CREATE INDEX CONCURRENTLY accounts_balance ON accounts (balance)",
    );
    lab.sql("origin", "DROP INDEX accounts_holder");
    lab.sql("origin", "CREATE TYPE tier AS ENUM ('bronze', 'silver')");
    lab.sql("origin", "ALTER TYPE tier ADD VALUE 'gold'");
    lab.sql("origin", "ALTER TABLE accounts ADD COLUMN tier tier");
    lab.sql("origin", "UPDATE accounts SET tier = 'gold' WHERE id <= 5");
    converges(
        &lab,
        "the renamed column and the enum",
        "select count(*) filter (where tier = 'gold'), min(holder) from accounts",
        "5|n51",
    );
    converges(
        &lab,
        "the indexes",
        "select string_agg(indexname, ',' order by indexname) from pg_indexes where tablename = 'accounts'",
        "accounts_balance,accounts_pkey",
    );
    let (ok, proof, out) = verify(&lab, "30s");
    assert!(ok, "verify after DDL: {out}");
    assert_eq!(proof["drift"], Value::Array(vec![]), "{proof}");
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert!(
        events.contains(r#""kind":"ddl_applied""#) && events.contains("RENAME COLUMN owner TO holder"),
        "{events}"
    );
}

#[test]
fn verify_reports_a_column_added_by_hand_on_a_subscriber_as_drift() {
    let lab = TestLab::new(BIN)
        .lab(&ALL.replace("tables = \"all\"", "schema = \"schema.sql\"\ntables = [\"items\"]"))
        .file(
            "schema.sql",
            "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);\nINSERT INTO items VALUES (1, 'a');\n",
        );
    lab.up();
    lab.sql("west", "ALTER TABLE items ADD COLUMN note text");
    // The extra column changes west's row checksums too: a short timeout,
    // since they will never match.
    let (ok, proof, out) = verify(&lab, "3s");
    assert!(!ok, "verify should fail on drift: {out}");
    let drift = proof["drift"].as_array().cloned().unwrap_or_default();
    assert_eq!(drift.len(), 1, "{proof}");
    assert_eq!(drift[0]["table"], "public.items", "{proof}");
    assert_eq!(drift[0]["node"], "west", "{proof}");
    let said = drift[0]["differences"].to_string();
    assert!(said.contains("note"), "{said}");
    let plain = text(&lab.run(&["verify", "--timeout", "3s"]));
    assert!(
        plain.contains("drift") && plain.contains("west") && plain.contains("note"),
        "{plain}"
    );
}

#[test]
fn ddl_manual_leaves_subscribers_alone_and_a_listed_replication_keeps_its_list() {
    let toml = r#"name = "twoways"
[postgres.origin]
[postgres.east]
[postgres.west]
[replication.kept]
publisher = "origin"
subscribers = ["east"]
schema = "items.sql"
tables = ["items"]
[replication.hands]
publisher = "origin"
subscribers = ["west"]
schema = "notes.sql"
tables = ["notes"]
ddl = "manual"
"#;
    let lab = TestLab::new(BIN)
        .lab(toml)
        .file("items.sql", "CREATE TABLE items (id int PRIMARY KEY);\n")
        .file("notes.sql", "CREATE TABLE notes (id int PRIMARY KEY);\n");
    lab.up();
    lab.sql("origin", "CREATE TABLE other (id int)");
    lab.sql("origin", "ALTER TABLE notes ADD COLUMN body text");
    lab.sql("origin", "ALTER TABLE items ADD COLUMN label text");
    poll("items.label on east", LIMIT, || {
        try_sql(&lab, "east", "select label from items limit 0").map(drop)
    });
    // east follows its listed table only; west (manual) gets nothing.
    assert_eq!(
        try_sql(&lab, "east", "select to_regclass('other') is null").as_deref(),
        Some("t")
    );
    assert_eq!(
        try_sql(&lab, "west", "select to_regclass('other') is null").as_deref(),
        Some("t")
    );
    assert!(try_sql(&lab, "west", "select body from notes limit 0").is_none());
    let out = lab.run(&["status", "--json"]);
    assert_success(&out, "status");
}

#[test]
fn ddl_inside_a_do_block_is_refused_with_an_event_not_dropped() {
    let lab = TestLab::new(BIN).lab(ALL);
    lab.up();
    lab.sql(
        "origin",
        "DO $$ BEGIN EXECUTE 'CREATE TABLE hidden (id int PRIMARY KEY)'; END $$",
    );
    let events = poll("a ddl_failed event for the DO block", LIMIT, || {
        let events = std::fs::read_to_string(lab.state().join("events.jsonl")).ok()?;
        events.contains(r#""kind":"ddl_failed""#).then_some(events)
    });
    let line = events
        .lines()
        .find(|l| l.contains("ddl_failed"))
        .unwrap_or_default();
    assert!(line.contains("inside DO") && line.contains("by hand"), "{line}");
    assert!(
        line.contains("prodhome.ddl_applied"),
        "says how to skip it: {line}"
    );
}
