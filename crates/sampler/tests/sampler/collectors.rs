//! Collectors on one real node: lock waits made on purpose, every
//! measurement of a quiet node, custom queries, and rates across a crash.

use std::time::Duration;

use model::{EventKind, FieldValue};
use sampler::{CustomQuery, Sampler};
use testkit::PgNode;

use crate::util::{connect, find, options, target, value};

#[tokio::test]
async fn a_quiet_node_yields_every_measurement_and_no_errors() {
    let node = PgNode::start();
    let mut opts = options(vec![target("solo", &node)]);
    opts.custom.push(CustomQuery {
        name: "numbers".into(),
        nodes: vec![],
        sql: "SELECT 'a' AS k, 1 AS v, true AS b UNION ALL SELECT 'b', 2, NULL".into(),
        tags: vec!["k".into()],
        fields: vec!["v".into(), "b".into()],
    });
    let mut sampler = Sampler::new(opts).unwrap();
    let first = sampler.sample_once().await;
    let second = sampler.sample_once().await;
    for points in [&first, &second] {
        assert!(
            find(points, "sample_errors", "solo", &[]).is_empty(),
            "{points:#?}"
        );
        assert_eq!(value(points, "locks", "solo", &[], "waiting"), Some(0.0));
        assert!(
            value(points, "activity", "solo", &[], "backends").unwrap() >= 4.0,
            "{points:#?}"
        );
        assert!(
            value(points, "process", "solo", &[], "processes").unwrap() >= 5.0,
            "{points:#?}"
        );
        assert!(value(points, "process", "solo", &[], "rss_bytes").unwrap() > 1e6);
        assert_eq!(value(points, "sampler", "solo", &[], "errors"), Some(0.0));
        assert_eq!(value(points, "numbers", "solo", &[("k", "a")], "v"), Some(1.0));
        assert_eq!(value(points, "numbers", "solo", &[("k", "a")], "b"), Some(1.0));
        // NULL leaves the field out; a number stays a float.
        let b = find(points, "numbers", "solo", &[("k", "b")]);
        assert_eq!(b[0].fields.get("b"), None);
        assert_eq!(b[0].fields["v"], FieldValue::F64(2.0));
    }
    // PSS is read every ten seconds only.
    assert!(value(&first, "process", "solo", &[], "pss_bytes").unwrap() > 1e6);
    assert!(value(&second, "process", "solo", &[], "pss_bytes").is_none());
    // Rates and CPU need a previous reading.
    assert!(find(&first, "database", "solo", &[]).is_empty());
    assert!(value(&first, "process", "solo", &[], "cpu_percent").is_none());
    // (Backends publish their counters about once a second, so two quick
    // cycles may well see a rate of 0.)
    assert!(
        value(
            &second,
            "database",
            "solo",
            &[("datname", "postgres")],
            "xact_commit"
        )
        .unwrap()
            >= 0.0
    );
    assert!(value(&second, "process", "solo", &[], "cpu_percent").unwrap() >= 0.0);
    assert!(sampler.take_events().is_empty());
}

#[tokio::test]
async fn two_sessions_on_one_row_show_as_a_lock_wait_and_a_chain() {
    let node = PgNode::start();
    node.sql("CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 0)");
    let holder = connect(&node).await;
    holder
        .batch_execute("BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 1")
        .await
        .unwrap();
    // Two more sessions queue behind it on the same row: B waits for the
    // holder's transaction, C for B's tuple lock.
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let client = connect(&node).await;
        waiters.push(tokio::spawn(async move {
            client
                .execute("UPDATE accounts SET balance = balance + 1 WHERE id = 1", &[])
                .await
        }));
        let probe = connect(&node).await;
        let n = waiters.len() as i64;
        crate::util::poll_async("the waiter to block", Duration::from_secs(30), || {
            let probe = &probe;
            async move {
                let row = probe
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                        &[],
                    )
                    .await
                    .ok()?;
                (row.get::<_, i64>(0) >= n).then_some(())
            }
        })
        .await;
    }

    let mut sampler = Sampler::new(options(vec![target("n", &node)])).unwrap();
    let points = sampler.sample_once().await;
    assert!(find(&points, "sample_errors", "n", &[]).is_empty(), "{points:#?}");
    assert_eq!(
        value(&points, "locks", "n", &[], "waiting"),
        Some(2.0),
        "{points:#?}"
    );
    assert_eq!(value(&points, "locks", "n", &[], "blocked"), Some(2.0));
    assert!(
        value(&points, "locks", "n", &[], "longest_chain").unwrap() >= 2.0,
        "{points:#?}"
    );
    assert!(value(&points, "locks", "n", &[], "oldest_wait_s").unwrap() > 0.0);
    let ungranted = value(
        &points,
        "locks",
        "n",
        &[
            ("mode", "ShareLock"),
            ("locktype", "transactionid"),
            ("granted", "false"),
        ],
        "count",
    );
    assert_eq!(ungranted, Some(1.0), "{points:#?}");
    assert_eq!(
        value(&points, "activity", "n", &[], "idle_in_transaction"),
        Some(1.0)
    );
    assert!(value(&points, "activity", "n", &[], "oldest_xact_s").unwrap() > 0.0);
    assert_eq!(
        value(
            &points,
            "activity",
            "n",
            &[("state", "active"), ("wait_event_type", "Lock")],
            "count"
        ),
        Some(2.0)
    );

    // Released: the waits are gone, and the combinations seen report 0.
    holder.batch_execute("COMMIT").await.unwrap();
    for w in waiters {
        w.await.unwrap().unwrap();
    }
    let points = sampler.sample_once().await;
    assert_eq!(value(&points, "locks", "n", &[], "waiting"), Some(0.0));
    assert_eq!(value(&points, "locks", "n", &[], "longest_chain"), Some(0.0));
    let gone = value(
        &points,
        "locks",
        "n",
        &[
            ("mode", "ShareLock"),
            ("locktype", "transactionid"),
            ("granted", "false"),
        ],
        "count",
    );
    assert_eq!(gone, Some(0.0));
}

#[tokio::test]
async fn a_failing_custom_query_is_a_sample_error_and_one_event() {
    let node = PgNode::start();
    let mut opts = options(vec![target("n", &node)]);
    opts.custom.push(CustomQuery {
        name: "broken".into(),
        nodes: vec!["n".into()],
        sql: "SELECT 1 AS v FROM no_such_table".into(),
        tags: vec![],
        fields: vec!["v".into()],
    });
    opts.custom.push(CustomQuery {
        name: "wrong_column".into(),
        nodes: vec![],
        sql: "SELECT 1 AS v".into(),
        tags: vec![],
        fields: vec!["w".into()],
    });
    let mut sampler = Sampler::new(opts).unwrap();
    for _ in 0..3 {
        let points = sampler.sample_once().await;
        let errors = find(&points, "sample_errors", "n", &[("collector", "broken")]);
        let FieldValue::Str(message) = &errors[0].fields["message"] else {
            panic!("message is a string")
        };
        assert!(message.contains("no_such_table"), "{message}");
        let wrong = find(&points, "sample_errors", "n", &[("collector", "wrong_column")]);
        assert!(format!("{:?}", wrong[0].fields["message"]).contains("no column `w`"));
        // The rest of the cycle is unaffected.
        assert_eq!(value(&points, "locks", "n", &[], "waiting"), Some(0.0));
        assert_eq!(value(&points, "sampler", "n", &[], "errors"), Some(2.0));
    }
    // One event per collector when it starts failing, not one per cycle.
    let events = sampler.take_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.unit == "n" && matches!(e.kind, EventKind::ProbeFailed { .. }))
    );
}

#[test]
fn options_that_cannot_work_are_refused() {
    let mut opts = options(vec![]);
    opts.custom.push(CustomQuery {
        name: "locks".into(),
        nodes: vec![],
        sql: "SELECT 1 AS v".into(),
        tags: vec![],
        fields: vec!["v".into()],
    });
    let err = Sampler::new(opts.clone()).err().unwrap();
    assert!(err.to_string().contains("built-in"), "{err}");
    opts.custom[0].name = "mine".into();
    opts.custom[0].nodes = vec!["ghost".into()];
    let err = Sampler::new(opts).err().unwrap();
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[tokio::test]
async fn commit_rates_stay_sane_across_a_crash_and_restart() {
    let mut node = PgNode::start();
    node.sql("CREATE TABLE t (id serial PRIMARY KEY, v int)");
    let mut sampler = Sampler::new(options(vec![target("n", &node)])).unwrap();
    let mut rates = Vec::new();
    let load = |client: tokio_postgres::Client| async move {
        for _ in 0..50 {
            client.execute("INSERT INTO t (v) VALUES (1)", &[]).await.unwrap();
        }
        client
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut client = connect(&node).await;
    for _ in 0..8 {
        tick.tick().await;
        client = load(client).await;
        let points = sampler.sample_once().await;
        rates.extend(value(
            &points,
            "database",
            "n",
            &[("datname", "postgres")],
            "xact_commit",
        ));
    }
    let before = rates.len();
    assert!(before >= 5, "rates before the crash: {rates:?}");
    // A big counter first, so that a reset mistaken for a rate would show.
    let burst = (0..3000).map(|_| client.execute("SELECT 1", &[]));
    for r in futures_util::future::join_all(burst).await {
        r.unwrap();
    }
    let counter = || -> i64 {
        node.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")
            .parse()
            .unwrap()
    };
    testkit::poll(
        "the burst to reach the statistics",
        Duration::from_secs(30),
        || (counter() >= 3000).then_some(()),
    );
    let points = sampler.sample_once().await;
    rates.extend(value(
        &points,
        "database",
        "n",
        &[("datname", "postgres")],
        "xact_commit",
    ));
    let counter_before = counter();
    drop(client);
    node.crash_and_restart();
    // Bounded: the sampler must come back within these cycles.
    let mut client = connect(&node).await;
    for _ in 0..50 {
        tick.tick().await;
        client = load(client).await;
        let points = sampler.sample_once().await;
        rates.extend(value(
            &points,
            "database",
            "n",
            &[("datname", "postgres")],
            "xact_commit",
        ));
        if rates.len() >= before + 5 {
            break;
        }
    }
    let counter_after: i64 = node
        .sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")
        .parse()
        .unwrap();
    assert!(
        counter_after < counter_before,
        "the crash did reset the counters ({counter_before} -> {counter_after})"
    );
    assert!(
        rates.len() >= before + 5,
        "rates came back after the restart: {rates:?}"
    );
    // 50 inserts plus the sampler's own queries per 200 ms is a few hundred
    // a second; a reset mistaken for a rate would be negative or far above.
    for r in &rates[before + 1..] {
        assert!((0.0..5_000.0).contains(r), "rate {r} out of range: {rates:?}");
    }
    assert!(rates.iter().all(|r| *r >= 0.0), "{rates:?}");
}
