//! The peer check: pgbadger, run on the same server's jsonlog, counts the
//! same errors by SQLSTATE, deadlocks, checkpoints and checkpoint buffers
//! as pglog's series.

use std::collections::BTreeMap;
use std::process::Command;

use crate::util::{Rig, connect, deadlock, sums, total};

const PGBADGER: &str = "/usr/bin/pgbadger";

/// pgbadger's `-x json` report of every jsonlog file in `rig`'s log.
fn pgbadger(rig: &Rig) -> serde_json::Value {
    let mut files: Vec<_> = std::fs::read_dir(&rig.log_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let out = Command::new(PGBADGER)
        .args(["-q", "-f", "jsonlog", "-x", "json", "-o", "-"])
        .args(&files)
        .output()
        .expect("run pgbadger");
    assert!(
        out.status.success(),
        "pgbadger: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pgbadger's JSON")
}

/// pgbadger's errors (ERROR, FATAL, PANIC) by SQLSTATE: `error_info`
/// groups them by normalised message, each with its SQLSTATEs and count.
fn errors_by_sqlstate(report: &serde_json::Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Some(dbs) = report["error_info"].as_object() else {
        return out;
    };
    for messages in dbs.values() {
        for info in messages.as_object().into_iter().flat_map(|m| m.values()) {
            let severe = info["error"][0]
                .as_str()
                .is_some_and(|e| ["ERROR:", "FATAL:", "PANIC:"].iter().any(|s| e.starts_with(s)));
            if let (true, Some(code)) = (severe, info["sqlstate"][0].as_str()) {
                *out.entry(code.to_string()).or_default() += info["count"].as_f64().unwrap_or(0.0);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbadger_counts_what_pglog_counts() {
    if !std::path::Path::new(PGBADGER).exists() {
        testkit::skip("pgbadger is not installed (apt-get install pgbadger)");
        return;
    }
    let rig = Rig::start();
    let c = connect(&rig.node).await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g",
    )
    .await
    .unwrap();
    for sql in [
        "SELECT 1/0",
        "SELECT 1/0",
        "INSERT INTO t VALUES (1, 0)",
        "SELECT * FROM nowhere",
    ] {
        assert!(c.batch_execute(sql).await.is_err(), "{sql} fails");
    }
    deadlock(&rig.node, &c).await;
    let url = format!("postgresql://postgres@127.0.0.1:{}/nodb", rig.node.port());
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err(),
        "no such database"
    );
    for _ in 0..2 {
        c.batch_execute("UPDATE t SET v = v + 1; CHECKPOINT")
            .await
            .unwrap();
    }
    rig.caught_up().await;

    let report = pgbadger(&rig);
    let theirs = errors_by_sqlstate(&report);
    let mut ours: BTreeMap<String, f64> = BTreeMap::new();
    for (tags, n) in sums(&rig.db, "pg_log", "count") {
        let severe = ["severity=ERROR,", "severity=FATAL,", "severity=PANIC,"]
            .iter()
            .any(|s| tags.starts_with(s));
        if let (true, Some((_, code))) = (severe, tags.split_once("sqlstate=")) {
            *ours.entry(code.to_string()).or_default() += n;
        }
    }
    assert_eq!(
        ours, theirs,
        "errors by SQLSTATE: pglog (left) and pgbadger (right)"
    );
    for code in ["22012", "23505", "42P01", "40P01", "3D000"] {
        assert!(ours.contains_key(code), "{code} made on purpose: {ours:?}");
    }
    assert_eq!(total(&rig.db, "pg_deadlocks", "count"), theirs["40P01"]);
    let started: f64 = report["checkpoint_info"]["starting"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_f64()).sum())
        .unwrap_or(0.0);
    assert!(started >= 2.0, "{}", report["checkpoint_info"]);
    assert_eq!(total(&rig.db, "pg_checkpoints", "count"), started);
    let buffers = report["checkpoint_info"]["wbuffer"].as_f64().unwrap_or(-1.0);
    assert_eq!(
        total(&rig.db, "pg_checkpoints", "buffers"),
        buffers,
        "checkpoint buffers: pglog (left) and pgbadger (right): {}",
        report["checkpoint_info"]
    );
}
