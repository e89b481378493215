//! Replication lag from both ends, with a real publisher and subscriber
//! (two PgNodes; the publication and subscription made here as the lab
//! makes them, prodhome.probe included).

use std::time::Duration;

use model::Point;
use sampler::{ReplicationTarget, Sampler};
use testkit::PgNode;

use crate::util::{connect, find, options, pause, target, value};

const SCHEMA: &str = "CREATE SCHEMA prodhome;
    CREATE TABLE prodhome.probe (id bigserial PRIMARY KEY, replication text NOT NULL, at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE books (id bigserial PRIMARY KEY, title text NOT NULL)";

#[tokio::test]
async fn lag_rises_while_a_subscriber_is_paused_and_falls_after() {
    let publisher = PgNode::start();
    let subscriber = PgNode::start();
    publisher.sql(SCHEMA);
    subscriber.sql(SCHEMA);
    publisher.sql("CREATE PUBLICATION shop FOR TABLE books, prodhome.probe");
    // CREATE SUBSCRIPTION may not run in a transaction block: a statement
    // of its own. Named <replication>_<subscriber>, as prodhome names it.
    subscriber.sql(&format!(
        "CREATE SUBSCRIPTION shop_sub CONNECTION 'host=127.0.0.1 port={} user=postgres dbname=postgres' PUBLICATION shop",
        publisher.port()
    ));
    testkit::poll("the initial sync", Duration::from_secs(60), || {
        let pending = subscriber.sql("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'");
        let total = subscriber.sql("SELECT count(*) FROM pg_subscription_rel");
        (pending == "0" && total == "2").then_some(())
    });

    let mut opts = options(vec![target("pub", &publisher), target("sub", &subscriber)]);
    opts.replications.push(ReplicationTarget {
        name: "shop".into(),
        publisher: "pub".into(),
        subscribers: vec!["sub".into()],
    });
    let mut sampler = Sampler::new(opts).unwrap();
    let slot = [
        ("slot", "shop_sub"),
        ("replication", "shop"),
        ("subscriber", "sub"),
    ];

    // Flowing: heartbeats arrive, the slot is active and close behind.
    let flowing = cycles_until("heartbeats to reach the subscriber", &mut sampler, |points| {
        let age = value(
            points,
            "replication",
            "sub",
            &[("replication", "shop"), ("publisher", "pub")],
            "heartbeat_age_s",
        )?;
        (age < 5.0).then_some(())
    })
    .await;
    assert_eq!(
        value(&flowing, "replication", "pub", &slot, "active"),
        Some(1.0),
        "{flowing:#?}"
    );
    assert!(value(&flowing, "replication", "pub", &slot, "lag_bytes").is_some());
    assert!(value(&flowing, "replication", "pub", &slot, "replay_lag_s").is_some());
    assert_eq!(
        value(
            &flowing,
            "replication",
            "sub",
            &[("subscription", "shop_sub")],
            "apply_running"
        ),
        Some(1.0),
        "{flowing:#?}"
    );
    assert!(
        find(&flowing, "sample_errors", "pub", &[]).is_empty(),
        "{flowing:#?}"
    );
    let before = value(&flowing, "replication", "pub", &slot, "lag_bytes").unwrap();

    // Paused: the publisher writes, nothing is confirmed. Measured from the
    // publisher side, the lag grows in bytes and in time.
    let paused_guard = pause(&subscriber);
    let writer = connect(&publisher).await;
    let writing = tokio::spawn(async move {
        loop {
            writer
                .batch_execute(
                    "INSERT INTO books (title) SELECT repeat('x', 200) FROM generate_series(1, 2000)",
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let paused = cycles_until("the lag to rise on the publisher side", &mut sampler, |points| {
        let bytes = value(points, "replication", "pub", &slot, "lag_bytes")?;
        let seconds = value(points, "replication", "pub", &slot, "confirmed_lag_s")?;
        (bytes > before + 1_000_000.0 && seconds > 1.0).then_some(())
    })
    .await;
    writing.abort();
    // The paused node's own sampling gives up at its deadline: an error,
    // not a stall of the publisher's sampling.
    assert!(
        !find(&paused, "sample_errors", "sub", &[]).is_empty(),
        "{paused:#?}"
    );
    assert!(value(&paused, "locks", "pub", &[], "waiting").is_some());
    drop(paused_guard);

    // Resumed: it catches up; the lag falls on both ends.
    let caught_up = cycles_until("the lag to fall after resume", &mut sampler, |points| {
        let bytes = value(points, "replication", "pub", &slot, "lag_bytes")?;
        let seconds = value(points, "replication", "pub", &slot, "confirmed_lag_s")?;
        let age = value(
            points,
            "replication",
            "sub",
            &[("replication", "shop"), ("publisher", "pub")],
            "heartbeat_age_s",
        )?;
        (bytes < 200_000.0 && seconds < 3.0 && age < 3.0).then_some(())
    })
    .await;
    assert_eq!(
        value(&caught_up, "replication", "pub", &slot, "active"),
        Some(1.0)
    );
    let rows: i64 = subscriber.sql("SELECT count(*) FROM books").parse().unwrap();
    assert!(rows >= 2000, "{rows} rows arrived");
}

/// Samples every 200 ms until `check` accepts a cycle's points (returned),
/// or panics after a minute naming `what`.
async fn cycles_until(
    what: &str,
    sampler: &mut Sampler,
    check: impl Fn(&[Point]) -> Option<()>,
) -> Vec<Point> {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tick.tick().await;
        let points = sampler.sample_once().await;
        if check(&points).is_some() {
            return points;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the last cycle:\n{points:#?}"
        );
    }
}
