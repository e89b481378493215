//! Lock trouble made on purpose against a real server: a deadlock with
//! exactly one victim, and the wait for a session to block on a lock. Used by
//! the log reader's tests and the dashboard's.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// A session of its own on `url` (its connection driven in the background).
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Until `pid` waits for a lock (30 s at most, then a panic).
pub async fn until_waiting(observer: &Client, pid: i32) {
    for _ in 0..1500 {
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

/// Two sessions update rows 1 and 2 of table `t` (columns `id`, `v`) in
/// opposite orders; asserts that exactly one is the deadlock's victim
/// (SQLSTATE 40P01).
pub async fn deadlock(url: &str, observer: &Client) {
    let (a, b) = (connect(url).await, connect(url).await);
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
    let codes: Vec<String> = [a_second.await.unwrap().err(), r_b.err()]
        .into_iter()
        .flatten()
        .filter_map(|e| e.code().map(|c| c.code().to_string()))
        .collect();
    assert_eq!(codes, ["40P01"], "exactly one side is the deadlock's victim");
}
