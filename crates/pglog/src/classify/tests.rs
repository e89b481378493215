use super::*;

fn rec(severity: &str, code: &str, message: &str) -> Record {
    Record {
        error_severity: severity.into(),
        state_code: Some(code.into()),
        message: message.into(),
        backend_type: Some("client backend".into()),
        ..Record::default()
    }
}

#[test]
fn a_deadlock_names_both_statements() {
    let mut r = rec("ERROR", "40P01", "deadlock detected");
    r.detail = Some(
        "Process 10 waits for ShareLock on transaction 5; blocked by process 11.\n\
         Process 11 waits for ShareLock on transaction 4; blocked by process 10.\n\
         Process 10: update t set v = 1 where id = 2\n\
         Process 11: update t set v = 1 where id = 1"
            .into(),
    );
    let Class::Deadlock { statements, .. } = classify(&r) else {
        panic!("not a deadlock")
    };
    assert_eq!(
        statements,
        [
            "update t set v = 1 where id = 2",
            "update t set v = 1 where id = 1"
        ]
    );
}

#[test]
fn a_lock_wait_gives_the_blocker_and_the_time() {
    let mut r = rec(
        "LOG",
        "00000",
        "process 42 still waiting for ShareLock on transaction 740 after 1000.129 ms",
    );
    r.detail = Some("Process holding the lock: 41. Wait queue: 42.".into());
    r.statement = Some("update t set v = 2 where id = 1".into());
    assert_eq!(
        classify(&r),
        Class::LockWait {
            blocking_pid: Some(41),
            wait_ms: 1000.129,
            statement: "update t set v = 2 where id = 1".into(),
            waiting: true,
        }
    );
    let acquired = rec(
        "LOG",
        "00000",
        "process 42 acquired ShareLock on transaction 740 after 2400.5 ms",
    );
    assert!(
        matches!(classify(&acquired), Class::LockWait { waiting: false, wait_ms, .. } if wait_ms == 2400.5)
    );
}

#[test]
fn a_checkpoint_gives_its_buffers_and_times() {
    let r = rec(
        "LOG",
        "00000",
        "checkpoint complete: wrote 3 buffers (0.0%); 0 WAL file(s) added, 0 removed, 0 recycled; write=0.102 s, sync=0.004 s, total=0.110 s; sync files=2, longest=0.002 s, average=0.002 s; distance=0 kB, estimate=0 kB",
    );
    assert_eq!(
        classify(&r),
        Class::Checkpoint {
            write_ms: 102.0,
            sync_ms: 4.0,
            buffers: 3
        }
    );
}

#[test]
fn autovacuum_and_slow_statements() {
    let r = rec(
        "LOG",
        "00000",
        "automatic vacuum of table \"postgres.public.t\": index scans: 0\npages: 0 removed\nsystem usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.25 s",
    );
    assert_eq!(
        classify(&r),
        Class::Autovacuum {
            table: "postgres.public.t".into(),
            duration_ms: 250.0
        }
    );
    let slow = rec(
        "LOG",
        "00000",
        "duration: 301.512 ms  statement: select pg_sleep(0.3)",
    );
    assert_eq!(
        classify(&slow),
        Class::SlowStatement {
            query: "select pg_sleep($1)".into(),
            duration_ms: 301.512
        }
    );
    let exec = rec(
        "LOG",
        "00000",
        "duration: 260.0 ms  execute s1: select * from t where id = $1",
    );
    assert!(
        matches!(classify(&exec), Class::SlowStatement { query, .. } if query == "select * from t where id = $1")
    );
    let bind = rec("LOG", "00000", "duration: 260.0 ms  bind s1: select 1");
    assert_eq!(classify(&bind), Class::Other);
}

#[test]
fn connection_failures_and_replication_workers() {
    let auth = rec("FATAL", "28P01", "password authentication failed for user \"x\"");
    assert_eq!(classify(&auth), Class::ConnectionFailure { kind: "auth" });
    let nodb = rec("FATAL", "3D000", "database \"nope\" does not exist");
    assert_eq!(classify(&nodb), Class::ConnectionFailure { kind: "other" });
    let mut worker = rec(
        "ERROR",
        "23505",
        "duplicate key value violates unique constraint \"t_pkey\"",
    );
    worker.backend_type = Some("logical replication worker".into());
    assert_eq!(classify(&worker), Class::ReplicationWorker { failed: true });
    let started = rec(
        "LOG",
        "00000",
        "logical replication apply worker for subscription \"s\" has started",
    );
    assert_eq!(classify(&started), Class::ReplicationWorker { failed: false });
    assert_eq!(classify(&rec("ERROR", "22012", "division by zero")), Class::Other);
}
