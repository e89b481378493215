//! The embedded store: ingest, query correctness, downsampling, retention.

use std::time::Duration;

use model::{Event, EventKind, FieldValue, Point};
use store::{EmbeddedOptions, EmbeddedWriter, StoreOptions, query};

const S: i64 = 1_000_000_000;

fn options(dir: &tempfile::TempDir, retention: Duration) -> EmbeddedOptions {
    EmbeddedOptions {
        path: dir.path().join("metrics.db"),
        retention,
    }
}

/// A timestamp a little in the past, on a whole minute.
fn base() -> i64 {
    let now = model::now_ns() - 3600 * S;
    now - now.rem_euclid(60 * S)
}

#[tokio::test]
async fn a_batch_through_the_store_reads_back_series_by_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::start(StoreOptions {
        embedded: Some(options(&dir, Duration::from_secs(86_400))),
        ..Default::default()
    })
    .unwrap();
    let t0 = base();
    let mut batch = Vec::new();
    for i in 0..100 {
        for node in ["publisher", "subscriber1"] {
            batch.push(
                Point::new("locks", t0 + i * S)
                    .tag("node", node)
                    .int("waiting", i)
                    .float("oldest_wait_s", i as f64 / 2.0)
                    .field("ok", FieldValue::Bool(i % 2 == 0))
                    .field("note", FieldValue::Str("text is not a series".into())),
            );
        }
    }
    batch.push(
        Point::new("activity", t0)
            .tag("node", "publisher")
            .int("total", 7),
    );
    store.points().send(batch);
    store.event(Event {
        ts_ns: t0 + 5 * S,
        unit: "publisher".into(),
        kind: EventKind::Ready,
    });
    store.flush().await;
    let stats = store.stats();
    assert_eq!(stats.sink("embedded").unwrap().written, 202, "{stats:?}");
    assert_eq!(stats.sink("embedded").unwrap().dropped, 0);

    let db = dir.path().join("metrics.db");
    let all = query::series(&db, "locks", None, t0, Duration::ZERO).unwrap();
    // Two nodes x three numeric fields; the string field is no series.
    assert_eq!(
        all.len(),
        6,
        "{:?}",
        all.iter().map(|s| (&s.tags, &s.field)).collect::<Vec<_>>()
    );
    let waiting = query::series(&db, "locks", Some("subscriber1"), t0 + 90 * S, Duration::ZERO).unwrap();
    let waiting = waiting.iter().find(|s| s.field == "waiting").unwrap();
    assert_eq!(waiting.tags["node"], "subscriber1");
    assert_eq!(
        waiting.points,
        (90..100).map(|i| (t0 + i * S, i as f64)).collect::<Vec<_>>()
    );
    let ok = all.iter().find(|s| s.field == "ok").unwrap();
    assert_eq!(&ok.points[..2], &[(t0, 1.0), (t0 + S, 0.0)]);

    let measurements = query::measurements(&db).unwrap();
    let names: Vec<&str> = measurements.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["activity", "locks"]);
    assert_eq!(measurements[1].fields, ["note", "ok", "oldest_wait_s", "waiting"]);
    assert_eq!(measurements[1].series, 8);

    let events = query::events(&db, t0).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Ready);
    assert!(query::events(&db, t0 + 6 * S).unwrap().is_empty());
}

#[test]
fn downsampling_averages_each_step_and_a_rewrite_replaces_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EmbeddedWriter::open(&options(&dir, Duration::from_secs(86_400))).unwrap();
    let t0 = base();
    let points: Vec<Point> = (0..60)
        .map(|i| {
            Point::new("database", t0 + i * S)
                .tag("node", "n")
                .float("xact_commit", i as f64)
        })
        .collect();
    writer.write(&points, &[]).unwrap();
    // The same series and timestamp again: the later write wins.
    writer
        .write(
            &[Point::new("database", t0 + 59 * S)
                .tag("node", "n")
                .float("xact_commit", 1000.0)],
            &[],
        )
        .unwrap();
    let db = dir.path().join("metrics.db");
    let series = query::series(&db, "database", Some("n"), t0, Duration::from_secs(10)).unwrap();
    assert_eq!(series.len(), 1);
    let expected: Vec<(i64, f64)> = (0..6)
        .map(|b| {
            let values: Vec<f64> = (b * 10..b * 10 + 10)
                .map(|i| if i == 59 { 1000.0 } else { i as f64 })
                .collect();
            (t0 + b * 10 * S, values.iter().sum::<f64>() / 10.0)
        })
        .collect();
    assert_eq!(series[0].points, expected);
    // From the middle of a bucket: only the samples after `since` count.
    let tail = query::series(&db, "database", None, t0 + 55 * S, Duration::from_secs(10)).unwrap();
    assert_eq!(
        tail[0].points,
        vec![(t0 + 50 * S, (55.0 + 56.0 + 57.0 + 58.0 + 1000.0) / 5.0)]
    );
    assert!(
        query::series(&db, "database", Some("other"), t0, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_deletes_samples_and_events_older_than_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(&dir, Duration::from_secs(3600));
    let now = model::now_ns();
    {
        let mut writer = EmbeddedWriter::open(&opts).unwrap();
        let points = [
            Point::new("process", now - 2 * 3600 * S)
                .tag("node", "n")
                .float("cpu_percent", 1.0),
            Point::new("process", now - 60 * S)
                .tag("node", "n")
                .float("cpu_percent", 2.0),
        ];
        let events = [
            Event {
                ts_ns: now - 2 * 3600 * S,
                unit: "n".into(),
                kind: EventKind::Ready,
            },
            Event {
                ts_ns: now - 60 * S,
                unit: "n".into(),
                kind: EventKind::NotReady,
            },
        ];
        writer.write(&points, &events).unwrap();
        let db = dir.path().join("metrics.db");
        assert_eq!(
            query::series(&db, "process", None, 0, Duration::ZERO).unwrap()[0]
                .points
                .len(),
            2
        );
        writer.prune().unwrap();
    }
    let db = dir.path().join("metrics.db");
    let series = query::series(&db, "process", None, 0, Duration::ZERO).unwrap();
    assert_eq!(series[0].points, vec![(now - 60 * S, 2.0)]);
    let events = query::events(&db, 0).unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.name()).collect::<Vec<_>>(),
        ["not_ready"]
    );
}

#[test]
fn reading_a_store_that_does_not_exist_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let err = query::series(&dir.path().join("metrics.db"), "locks", None, 0, Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("prodhome up"), "{err}");
}

#[test]
fn merging_chunks_keeps_every_sample_in_order_with_late_and_repeated_points() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EmbeddedWriter::open(&options(&dir, Duration::from_secs(86_400))).unwrap();
    let t0 = base();
    let point = |i: i64, v: f64| {
        Point::new("activity", t0 + i * S)
            .tag("node", "n")
            .float("oldest_xact_s", v)
    };
    // One write per second, as a live lab makes them...
    for i in 0..30 {
        writer.write(&[point(i, i as f64)], &[]).unwrap();
    }
    // ...a point that arrives late, and one written again with a new value.
    writer.write(&[point(40, 40.0), point(35, 35.0)], &[]).unwrap();
    writer.write(&[point(10, 1000.0)], &[]).unwrap();
    let db = dir.path().join("metrics.db");
    let mut expected: Vec<(i64, f64)> = (0..30).map(|i| (t0 + i * S, i as f64)).collect();
    expected[10].1 = 1000.0;
    expected.extend([(t0 + 35 * S, 35.0), (t0 + 40 * S, 40.0)]);
    let before = query::series(&db, "activity", None, t0, Duration::ZERO).unwrap();
    assert_eq!(before[0].points, expected);
    writer.maintain().unwrap();
    let after = query::series(&db, "activity", None, t0, Duration::ZERO).unwrap();
    assert_eq!(after, before);
    // From the middle: chunks that began earlier are still found.
    let tail = query::series(&db, "activity", None, t0 + 29 * S, Duration::ZERO).unwrap();
    assert_eq!(tail[0].points, expected[29..]);
}

#[test]
fn a_reopened_store_keeps_its_series_and_takes_new_fields() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(&dir, Duration::from_secs(86_400));
    let t0 = base();
    {
        let mut writer = EmbeddedWriter::open(&opts).unwrap();
        writer
            .write(
                &[Point::new("process", t0).tag("node", "n").int("processes", 7)],
                &[],
            )
            .unwrap();
    }
    // As after a daemon restart: a new writer on the same file.
    let mut writer = EmbeddedWriter::open(&opts).unwrap();
    writer
        .write(
            &[Point::new("process", t0 + S)
                .tag("node", "n")
                .float("cpu_percent", 12.5)
                .int("processes", 8)],
            &[],
        )
        .unwrap();
    let db = dir.path().join("metrics.db");
    let series = query::series(&db, "process", Some("n"), t0, Duration::ZERO).unwrap();
    let got: Vec<(&str, &[(i64, f64)])> = series.iter().map(|s| (s.field.as_str(), &s.points[..])).collect();
    assert_eq!(
        got,
        [
            ("cpu_percent", &[(t0 + S, 12.5)][..]),
            ("processes", &[(t0, 7.0), (t0 + S, 8.0)][..])
        ]
    );
}
