//! `prodhome migrate`: a schema change rehearsed under load, on a lab
//! unlike the seed (nodes `main` and `replica`, the user's `orders` table,
//! a hum script that writes to it).

use serde_json::Value;

use testkit::TestLab;

use crate::{BIN, text};

const LAB: &str = r#"name = "shop"
[postgres.main]
[postgres.replica]
[replication.orders]
publisher = "main"
subscribers = ["replica"]
schema = "schema.sql"
tables = ["orders"]
[hum]
node = "main"
workload = "hot.sql"
clients = 2
rate = 100
"#;

/// The hot table, with enough rows that a plain index build takes a while.
fn schema(rows: u32) -> String {
    format!(
        "CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric NOT NULL, note text);\n\
         INSERT INTO orders (customer, amount, note) SELECT g % 1000, g, md5(g::text) FROM generate_series(1, {rows}) g;\n"
    )
}

/// Every transaction of the hum writes to the hot table.
const HOT: &str =
    "\\set c random(1, 1000)\nINSERT INTO orders (customer, amount, note) VALUES (:c, 1, 'hum');\n";

fn lab(rows: u32) -> TestLab {
    let lab = TestLab::new(BIN)
        .lab(LAB)
        .file("schema.sql", &schema(rows))
        .file("hot.sql", HOT);
    lab.up();
    lab
}

/// `prodhome migrate ARGS --json`: the exit code and the report.
fn migrate(lab: &TestLab, args: &[&str]) -> (i32, Value) {
    let mut all = vec![
        "migrate",
        "--json",
        "--window",
        "1s",
        "--replication-timeout",
        "3s",
    ];
    all.extend_from_slice(args);
    let out = lab.run(&all);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("migrate {args:?} printed no JSON ({e}): {}", text(&out)));
    let code = out.status.code().expect("exit code");
    // The exit code is the verdict's.
    assert_eq!(code == 0, report["verdict"] == "pass", "{report}");
    (code, report)
}

fn number(report: &Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number: {report}"))
}

#[test]
fn a_plain_create_index_blocks_the_writers_and_concurrently_does_not() {
    let lab = lab(400_000);
    lab.write(
        "plain.sql",
        "CREATE INDEX orders_note ON orders (note, amount);\n",
    );
    let (_, plain) = migrate(&lab, &["--max-blocked-ms", "5000", "plain.sql"]);
    assert_eq!(plain["ok"], true, "{plain}");
    assert_eq!(plain["mode"], "one transaction", "{plain}");
    assert!(
        number(&plain, "blocked_sessions") > 0.0,
        "writers waited on the index build: {plain}"
    );
    assert!(number(&plain, "max_lock_wait_ms") > 0.0, "{plain}");
    let locks = plain["locks"].as_array().expect("locks").clone();
    assert!(
        locks
            .iter()
            .any(|l| l["table"] == "orders" && l["mode"] == "ShareLock"),
        "CREATE INDEX takes SHARE on orders: {plain}"
    );
    assert!(number(&plain, "duration_ms") > 0.0, "{plain}");
    assert_eq!(plain["thresholds"]["max_blocked_ms"], 5000, "{plain}");

    lab.sql("main", "DROP INDEX orders_note");
    lab.write(
        "concurrent.sql",
        "CREATE INDEX CONCURRENTLY orders_note ON orders (note, amount);\n",
    );
    let (_, concurrent) = migrate(&lab, &["concurrent.sql"]);
    assert_eq!(concurrent["ok"], true, "{concurrent}");
    assert!(
        concurrent["mode"]
            .as_str()
            .unwrap()
            .starts_with("statement by statement"),
        "{concurrent}"
    );
    assert_eq!(number(&concurrent, "blocked_sessions"), 0.0, "{concurrent}");
    let index = lab.sql(
        "main",
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_note'::regclass",
    );
    assert_eq!(index, "t");
}

#[test]
fn a_migration_by_psql_is_measured_and_a_failing_file_names_its_line_and_changes_nothing() {
    let lab = lab(2_000);
    lab.write("add.sql", "ALTER TABLE orders ADD COLUMN shipped boolean;\n");
    let (_, report) = migrate(&lab, &["--", "psql", "-v", "ON_ERROR_STOP=1", "-f", "add.sql"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["mode"], "command", "{report}");
    for field in [
        "duration_ms",
        "blocked_sessions",
        "max_lock_wait_ms",
        "p99_ms_before",
        "p99_ms_during",
        "errors_during",
    ] {
        number(&report, field);
    }
    assert!(
        number(&report["before"], "transactions") > 0.0,
        "hum measured before: {report}"
    );
    assert_eq!(report["schema_changed"], true, "{report}");
    let columns = lab.sql("main", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'shipped'");
    assert_eq!(columns, "1");

    let before = lab.sql("main", "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'orders'");
    lab.write(
        "bad.sql",
        "ALTER TABLE orders ADD COLUMN flag boolean;\nCREATE INDEX orders_flag ON orders (flag);\nALTER TABL orders ADD COLUMN oops int;\n",
    );
    let out = lab.run(&[
        "migrate",
        "--window",
        "1s",
        "--replication-timeout",
        "1s",
        "bad.sql",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("bad.sql:3:7: ERROR: syntax error at or near \"TABL\""),
        "{said}"
    );
    assert!(said.contains("rolled back"), "{said}");
    let after = lab.sql("main", "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'orders'");
    assert_eq!(after, before, "the failed migration left the table as it was");
    assert_eq!(
        lab.sql(
            "main",
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_flag'"
        ),
        "0"
    );

    // The migration is an event pair the dashboard draws as a span.
    let log = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap_or_default();
    assert!(
        log.contains(r#""kind":"migration","phase":"started","file":"bad.sql""#),
        "{log}"
    );
    assert!(
        log.contains(r#""kind":"migration","phase":"failed","file":"bad.sql""#),
        "{log}"
    );
}

/// Kills the lock-holding psql even when the test fails.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lock_timeout_retries_are_each_reported_and_squawk_warns_beside_the_numbers() {
    let lab = lab(2_000);
    // Another session holds a lock on orders: the ALTER cannot get its own.
    let holder = Holder(
        lab.command()
            .args([
                "psql",
                "main",
                "-c",
                "BEGIN; LOCK TABLE orders IN ACCESS SHARE MODE; SELECT pg_sleep(60)",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn psql"),
    );
    testkit::poll("the holder's lock", std::time::Duration::from_secs(20), || {
        let held = lab.sql(
            "main",
            "SELECT count(*) FROM pg_locks WHERE relation = 'orders'::regclass AND mode = 'AccessShareLock' AND granted",
        );
        (held != "0").then_some(())
    });
    lab.write("alter.sql", "ALTER TABLE orders ADD COLUMN late boolean;\n");
    let (code, report) = migrate(&lab, &["--lock-timeout", "200ms", "--retries", "2", "alter.sql"]);
    drop(holder);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    let attempts = report["attempts"].as_array().expect("attempts").clone();
    assert_eq!(attempts.len(), 3, "{report}");
    for a in &attempts {
        assert_eq!(a["sqlstate"], "55P03", "{report}");
    }
    assert!(
        report["error"].as_str().unwrap().contains("alter.sql:1:"),
        "{report}"
    );

    lab.write(
        "index.sql",
        "CREATE INDEX orders_customer ON orders (customer);\n",
    );
    let (_, report) = migrate(&lab, &["index.sql"]);
    assert_eq!(report["ok"], true, "{report}");
    if report["squawk"]["installed"] != true {
        testkit::skip(&format!(
            "squawk is not installed (pip install squawk-cli): {}",
            report["squawk"]
        ));
        assert!(
            report["squawk"]["note"]
                .as_str()
                .unwrap()
                .contains("not installed"),
            "{report}"
        );
        return;
    }
    let warnings: Vec<String> = report["squawk"]["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("index.sql:1:1: warning: require-concurrent-index-creation")),
        "{warnings:?}"
    );
}
