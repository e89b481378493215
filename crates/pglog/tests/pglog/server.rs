//! A real server logging jsonlog: a deadlock, a unique violation, a
//! division by zero, a lock wait past deadlock_timeout and a slow
//! statement each reach the store with their SQLSTATE and counts and the
//! event log with their details; a log rotation and a crash and restart
//! of the server lose no line (the store's count of messages equals the
//! lines in the files).

use std::time::Duration;

use model::EventKind;
use testkit::poll;
use tokio_postgres::Client;

use crate::util::{Rig, connect, deadlock, sums, total, until_waiting};

/// A holds row 10 until B has waited past deadlock_timeout (its LOG line
/// is in the store), then lets go.
async fn lock_wait(rig: &Rig, observer: &Client) -> i32 {
    let (a, b) = (connect(&rig.node).await, connect(&rig.node).await);
    let pid_a: i32 = a.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let pid_b: i32 = b.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    a.batch_execute("BEGIN; UPDATE t SET v = 3 WHERE id = 10")
        .await
        .unwrap();
    // The deadlock's own waits are counted before this one starts.
    rig.caught_up().await;
    let before = total(&rig.db, "pg_lock_waits", "count");
    let waiter = tokio::spawn(async move { b.batch_execute("UPDATE t SET v = 4 WHERE id = 10").await });
    until_waiting(observer, pid_b).await;
    let db = rig.db.clone();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_deadlocks_lock_waits_and_slow_statements_reach_the_store_through_rotation_and_restart() {
    let mut rig = Rig::start();
    let db = rig.db.clone();
    let observer = connect(&rig.node).await;
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
    deadlock(&rig.node, &observer).await;
    let holder = lock_wait(&rig, &observer).await;
    observer
        .batch_execute("SELECT pg_rotate_logfile()")
        .await
        .unwrap();
    assert!(observer.batch_execute("SELECT 1/0").await.is_err());
    observer.batch_execute("CHECKPOINT").await.unwrap();
    drop(observer);

    rig.node.crash_and_restart();
    let after = connect(&rig.node).await;
    assert!(after.batch_execute("SELECT 2/0").await.is_err());
    after.batch_execute("CHECKPOINT").await.unwrap();

    // Every line in the files, across the rotation and the restart, is
    // counted once: the messages the store holds are the files' lines.
    rig.caught_up().await;
    let files: Vec<_> = std::fs::read_dir(&rig.log_dir)
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
    while let Ok(e) = rig.events.try_recv() {
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
    let metrics = rig.store.prometheus_text().unwrap();
    assert!(
        metrics.contains("prodhome_pg_deadlocks_total{node=\"n1\"} 1"),
        "{metrics}"
    );
}
