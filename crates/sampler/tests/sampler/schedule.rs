//! The sampling loop: a stuck node and a dead InfluxDB hold up nothing.

use std::time::Duration;

use model::EventKind;
use sampler::SamplerOptions;
use store::{EmbeddedOptions, InfluxApi, InfluxOptions, StoreOptions, query};
use testkit::{PgNode, free_port};

use crate::util::{pause, poll_async, target};

#[tokio::test]
async fn a_paused_node_and_a_dead_influxdb_stall_nothing() {
    let live = PgNode::start();
    let stuck = PgNode::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let store = store::start(StoreOptions {
        embedded: Some(EmbeddedOptions {
            path: db.clone(),
            retention: Duration::from_secs(3600),
        }),
        influx: Some(InfluxOptions {
            url: format!("http://127.0.0.1:{}", free_port()),
            api: InfluxApi::V1 { db: "lab".into() },
            batch: 100,
            buffer: 200,
            lab: None,
            create_database: false,
        }),
        prometheus: false,
    })
    .unwrap();
    let (events_tx, mut events) = tokio::sync::mpsc::channel(100);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let opts = SamplerOptions {
        interval: Duration::from_millis(100),
        nodes: vec![target("live", &live), target("stuck", &stuck)],
        replications: vec![],
        custom: vec![],
        statement_timeout: Duration::from_millis(300),
    };
    let paused = pause(&stuck);
    let since = model::now_ns();
    let running = tokio::spawn(sampler::run(opts, store.points(), events_tx, stop));

    let cycles = |node: &'static str| {
        let db = db.clone();
        move || -> usize {
            query::series(&db, "sampler", Some(node), since, Duration::ZERO)
                .ok()
                .and_then(|s| s.into_iter().find(|s| s.field == "duration_s"))
                .map(|s| s.points.len())
                .unwrap_or(0)
        }
    };
    let (live_cycles, stuck_cycles) = (cycles("live"), cycles("stuck"));
    // The live node keeps its pace while the stuck one waits out deadlines
    // and the InfluxDB sink overflows.
    poll_async(
        "the live node to be sampled 30 times",
        Duration::from_secs(60),
        || {
            let n = live_cycles();
            async move { (n >= 30).then_some(()) }
        },
    )
    .await;
    poll_async(
        "the stuck node's cycles to be abandoned twice",
        Duration::from_secs(60),
        || {
            let n = stuck_cycles();
            async move { (n >= 2).then_some(()) }
        },
    )
    .await;
    assert!(
        live_cycles() > 3 * stuck_cycles(),
        "live {} vs stuck {}",
        live_cycles(),
        stuck_cycles()
    );
    let errors = query::series(&db, "sample_errors", Some("stuck"), since, Duration::ZERO).unwrap();
    assert!(!errors.is_empty());
    assert!(
        query::series(&db, "sample_errors", Some("live"), since, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    let skipped = query::series(&db, "sampler", Some("stuck"), since, Duration::ZERO).unwrap();
    let skipped = skipped.iter().find(|s| s.field == "skipped_ticks").unwrap();
    assert!(skipped.points.last().unwrap().1 >= 1.0, "{skipped:?}");
    poll_async(
        "the InfluxDB overflow to be counted",
        Duration::from_secs(60),
        || {
            let dropped = store.stats().sink("influx").map(|s| s.dropped).unwrap_or(0);
            async move { (dropped > 0).then_some(()) }
        },
    )
    .await;

    stop_tx.send(true).unwrap();
    running.await.unwrap().unwrap();
    drop(paused);
    // The stuck node's failures were announced once per collector, not
    // once per cycle.
    let mut announced = Vec::new();
    while let Ok(e) = events.try_recv() {
        announced.push(e);
    }
    assert!(!announced.is_empty());
    assert!(announced.iter().all(|e| e.unit == "stuck"), "{announced:?}");
    assert!(announced.len() <= 3, "{announced:?}");
    assert!(
        announced
            .iter()
            .all(|e| matches!(e.kind, EventKind::ProbeFailed { .. }))
    );
}
