//! A real server logging jsonlog: a deadlock, a unique violation, a
//! division by zero, a lock wait past deadlock_timeout and a slow
//! statement each reach the store with their SQLSTATE and counts and the
//! event log with their details; a log rotation and a crash and restart
//! of the server lose no line (the store's count of messages equals the
//! lines in the files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::{Event, EventKind};
use store::{EmbeddedOptions, StoreOptions, query};
use testkit::{PgNode, poll};
use tokio_postgres::{Client, NoTls};

/// The settings prodhome's conf.rs writes, with shorter thresholds.
const SETTINGS: &[&str] = &[
    "logging_collector=on",
    "log_destination=jsonlog",
    "log_directory=log",
    "log_filename=postgresql-%Y%m%d-%H%M%S.log",
    "log_lock_waits=on",
    "log_checkpoints=on",
    "deadlock_timeout=200ms",
    "log_min_duration_statement=200ms",
    "lc_messages=C",
];

async fn connect(node: &PgNode) -> Client {
    let (client, conn) = tokio_postgres::connect(&node.url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Sum of `field` per tag set of `measurement` on node `n1`.
fn sums(db: &Path, measurement: &str, field: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in query::series(db, measurement, Some("n1"), 0, Duration::ZERO).unwrap_or_default() {
        if s.field == field {
            let key: Vec<String> = s
                .tags
                .iter()
                .filter(|(k, _)| *k != "node")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            *out.entry(key.join(",")).or_default() += s.points.iter().map(|p| p.1).sum::<f64>();
        }
    }
    out
}

fn total(db: &Path, measurement: &str, field: &str) -> f64 {
    sums(db, measurement, field).values().sum()
}

/// Lines in every jsonlog file of `dir`.
fn lines_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().count())
                .sum()
        })
        .unwrap_or(0)
}

/// Waits until `pid` waits for a lock.
async fn until_waiting(observer: &Client, pid: i32) {
    for _ in 0..600 {
        let row = observer
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
                &[&pid],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pid {pid} never waited for a lock");
}

async fn deadlock(node: &PgNode, observer: &Client) {
    let (a, b) = (connect(node).await, connect(node).await);
    let pid_a: i32 = a.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    a.batch_execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE t SET v = 2 WHERE id = 2")
        .await
        .unwrap();
    let a_second = tokio::spawn(async move {
        let r = a.batch_execute("UPDATE t SET v = 1 WHERE id = 2").await;
        let _ = a.batch_execute("ROLLBACK").await;
        r
    });
    until_waiting(observer, pid_a).await;
    let r_b = b.batch_execute("UPDATE t SET v = 2 WHERE id = 1").await;
    let _ = b.batch_execute("ROLLBACK").await;
    let r_a = a_second.await.unwrap();
    let codes: Vec<String> = [r_a.err(), r_b.err()]
        .into_iter()
        .flatten()
        .filter_map(|e| e.code().map(|c| c.code().to_string()))
        .collect();
    assert_eq!(codes, ["40P01"], "exactly one side is the deadlock's victim");
}

/// A holds row 10 until B has waited past deadlock_timeout (its LOG line
/// is in the store), then lets go.
async fn lock_wait(node: &PgNode, observer: &Client, db: &Path) -> i32 {
    let (a, b) = (connect(node).await, connect(node).await);
    let pid_a: i32 = a.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let pid_b: i32 = b.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    a.batch_execute("BEGIN; UPDATE t SET v = 3 WHERE id = 10")
        .await
        .unwrap();
    let before = total(db, "pg_lock_waits", "count");
    let waiter = tokio::spawn(async move { b.batch_execute("UPDATE t SET v = 4 WHERE id = 10").await });
    until_waiting(observer, pid_b).await;
    let db = db.to_path_buf();
    tokio::task::spawn_blocking(move || {
        poll("the lock wait in the store", Duration::from_secs(30), || {
            (total(&db, "pg_lock_waits", "count") > before).then_some(())
        })
    })
    .await
    .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    waiter.await.unwrap().unwrap();
    pid_a
}

fn start_store(db: &Path) -> store::Store {
    store::start(StoreOptions {
        embedded: Some(EmbeddedOptions {
            path: db.to_path_buf(),
            retention: Duration::from_secs(3600),
        }),
        influx: None,
        prometheus: true,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_deadlocks_lock_waits_and_slow_statements_reach_the_store_through_rotation_and_restart() {
    let mut node = PgNode::start_with(SETTINGS);
    let log_dir: PathBuf = node.data_dir().join("log");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let store = start_store(&db);
    let (events_tx, mut events) = tokio::sync::mpsc::channel::<Event>(1000);
    let mut opts = pglog::Options::new([("n1".to_string(), log_dir.clone())], Duration::from_millis(200));
    opts.since = std::time::SystemTime::UNIX_EPOCH;
    let reader = tokio::spawn(pglog::run(opts, store.points(), events_tx));

    let observer = connect(&node).await;
    observer
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g",
        )
        .await
        .unwrap();
    let dup = observer
        .batch_execute("INSERT INTO t VALUES (1, 0)")
        .await
        .unwrap_err();
    assert_eq!(dup.code().map(|c| c.code()), Some("23505"));
    observer.batch_execute("SELECT pg_sleep(0.3)").await.unwrap();
    deadlock(&node, &observer).await;
    let holder = lock_wait(&node, &observer, &db).await;
    observer
        .batch_execute("SELECT pg_rotate_logfile()")
        .await
        .unwrap();
    assert!(observer.batch_execute("SELECT 1/0").await.is_err());
    observer.batch_execute("CHECKPOINT").await.unwrap();
    drop(observer);

    node.crash_and_restart();
    let after = connect(&node).await;
    assert!(after.batch_execute("SELECT 2/0").await.is_err());
    after.batch_execute("CHECKPOINT").await.unwrap();

    // Every line in the files, across the rotation and the restart, is
    // counted once: the messages the store holds are the files' lines.
    let db2 = db.clone();
    let dir2 = log_dir.clone();
    tokio::task::spawn_blocking(move || {
        poll(
            "the store to count every line of the log",
            Duration::from_secs(60),
            || {
                let (files, counted) = (lines_in(&dir2), total(&db2, "pg_log", "count") as usize);
                (files > 0 && files == counted).then_some(())
            },
        )
    })
    .await
    .unwrap();
    let files: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert!(files.len() >= 3, "rotation and restart made new files: {files:?}");

    let by_code = sums(&db, "pg_log", "count");
    assert_eq!(
        by_code.get("severity=ERROR,sqlstate=23505"),
        Some(&1.0),
        "{by_code:?}"
    );
    assert_eq!(
        by_code.get("severity=ERROR,sqlstate=22012"),
        Some(&2.0),
        "{by_code:?}"
    );
    assert_eq!(
        by_code.get("severity=ERROR,sqlstate=40P01"),
        Some(&1.0),
        "{by_code:?}"
    );
    assert_eq!(total(&db, "pg_deadlocks", "count"), 1.0);
    assert!(total(&db, "pg_lock_waits", "count") >= 1.0);
    assert!(total(&db, "pg_checkpoints", "count") >= 2.0);
    let slow = sums(&db, "pg_slow_statements", "count");
    let sleep = pglog::query_hash("SELECT pg_sleep($1)");
    assert_eq!(slow.get(&format!("query={sleep}")), Some(&1.0), "{slow:?}");
    assert_eq!(total(&db, "pg_log_dropped", "count"), 0.0);

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e.kind);
    }
    let deadlock = seen.iter().find_map(|k| match k {
        EventKind::Deadlock { statements, .. } => Some(statements.clone()),
        _ => None,
    });
    let deadlock = deadlock.expect("a deadlock event");
    assert_eq!(deadlock.len(), 2, "{deadlock:?}");
    assert!(
        deadlock.iter().all(|s| s.starts_with("UPDATE t SET v")),
        "{deadlock:?}"
    );
    assert!(
        seen.iter().any(
            |k| matches!(k, EventKind::LockWait { blocking_pid: Some(p), statement, .. }
            if *p == holder as i64 && statement.contains("id = 10"))
        ),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|k| matches!(k, EventKind::SlowStatement { query, duration_ms }
        if query == "SELECT pg_sleep($1)" && *duration_ms >= 300))
    );
    for code in ["23505", "22012"] {
        let n = seen
            .iter()
            .filter(|k| matches!(k, EventKind::LogError { sqlstate, .. } if sqlstate == code))
            .count();
        assert_eq!(
            n, 1,
            "one LogError for {code} (the second 22012 is within the minute): {seen:?}"
        );
    }
    let metrics = store.prometheus_text().unwrap();
    assert!(
        metrics.contains("prodhome_pg_deadlocks_total{node=\"n1\"} 1"),
        "{metrics}"
    );
    reader.abort();
}
