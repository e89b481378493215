//! The producers' handover (`model::PointSender`) when a sink's queue is
//! full: the batch is dropped, not waited for; the producer hears
//! `model::Full` and the sink counts the drop in its stats.

use std::net::TcpListener;

use model::{Full, Point};
use store::{InfluxApi, InfluxOptions, StoreOptions};

fn batch(n: usize) -> Vec<Point> {
    (0..n)
        .map(|i| Point::new("m", i as i64).int("v", i as i64))
        .collect()
}

#[tokio::test]
async fn a_full_queue_drops_the_batch_and_counts_it_instead_of_waiting() {
    // A server that accepts connections (into its backlog) and never
    // answers: the influx sink holds its first batch, retrying, so its queue
    // of 10 points stays full while the test runs.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let store = store::start(StoreOptions {
        influx: Some(InfluxOptions {
            url: format!("http://127.0.0.1:{port}"),
            api: InfluxApi::V1 { db: "lab".into() },
            batch: 100,
            buffer: 10,
            lab: None,
            create_database: false,
        }),
        ..Default::default()
    })
    .unwrap();
    let points = store.points();

    assert_eq!(points.try_send(batch(10)), Ok(()), "10 points fit in 10");
    assert_eq!(points.try_send(batch(3)), Err(Full { dropped: 3 }));
    assert_eq!(points.try_send(batch(11)), Err(Full { dropped: 11 }));
    assert_eq!(points.try_send(Vec::new()), Ok(()), "nothing always fits");

    let influx = store.stats().sink("influx").cloned().unwrap();
    // The store's own report (every 10 s) may add a dropped point of its own.
    assert!(influx.dropped >= 14, "{influx:?}");
    assert_eq!(influx.queued, 10, "{influx:?}");
    assert_eq!(influx.written, 0, "{influx:?}");
}
