//! Services' lines counted by level into a real store: JSON lines and a
//! lab regex, every line counted once, and under overload what is not
//! counted is counted as dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use pglog::{LevelRule, ServiceLog, count_services};
use store::query;
use testkit::poll;

use crate::util::start_store;

/// `level -> count` summed over the store for `service`, and its drops.
fn counts(db: &Path, service: &str) -> (BTreeMap<String, i64>, i64) {
    let mut levels = BTreeMap::new();
    let sum = |s: &query::Series| s.points.iter().map(|p| p.1).sum::<f64>() as i64;
    for s in query::series(db, "service_log_lines", None, 0, Duration::ZERO).unwrap_or_default() {
        if s.tags.get("service").map(String::as_str) == Some(service) {
            *levels.entry(s.tags["level"].clone()).or_default() += sum(&s);
        }
    }
    let dropped = query::series(db, "service_log_dropped", None, 0, Duration::ZERO)
        .unwrap_or_default()
        .iter()
        .filter(|s| s.tags.get("service").map(String::as_str) == Some(service))
        .map(sum)
        .sum();
    (levels, dropped)
}

fn rule(regex: Option<&str>) -> LevelRule {
    LevelRule::new(regex).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_lines_reach_the_store_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let store = start_store(&db);
    let services = vec![
        ServiceLog {
            service: "api".into(),
            rule: rule(None),
        },
        ServiceLog {
            service: "worker".into(),
            rule: rule(Some(r"^\S+ (?P<level>[A-Za-z]+):")),
        },
    ];
    let taps = count_services(services, Duration::from_millis(100), store.points());
    let (api, worker) = (taps.tap("api").unwrap(), taps.tap("worker").unwrap());
    assert!(taps.tap("ghost").is_none());
    for _ in 0..3 {
        api(br#"{"level":"info","msg":"request"}"#);
    }
    api(br#"{"lvl":"WARNING","msg":"slow"}"#);
    api(br#"{"severity":"error","msg":"boom"}"#);
    api(b"a stack trace line\n");
    worker(b"12:00:00 ERR: cannot reach the queue\n");
    worker(b"12:00:01 Info: retrying\n");
    worker(b"12:00:02 info: ok\n");
    let want_api: BTreeMap<String, i64> = [("error", 1), ("info", 3), ("unknown", 1), ("warn", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let want_worker: BTreeMap<String, i64> = [("error", 1), ("info", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        poll(
            "both services' lines in the store",
            Duration::from_secs(30),
            || {
                (counts(&db2, "api") == (want_api.clone(), 0)
                    && counts(&db2, "worker") == (want_worker.clone(), 0))
                    .then_some(())
            },
        )
    })
    .await
    .unwrap();
    drop((api, worker, taps));
    drop(store);
}

/// Far more lines at once than the queue holds: the tap never waits, and
/// every line is either counted or counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_counter_drops_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let store = start_store(&db);
    let services = vec![ServiceLog {
        service: "flood".into(),
        rule: rule(None),
    }];
    let taps = count_services(services, Duration::from_millis(100), store.points());
    let tap = taps.tap("flood").unwrap();
    const SENT: i64 = 200_000;
    for _ in 0..SENT {
        tap(br#"{"level":"debug","msg":"tick"}"#);
    }
    let db2 = db.clone();
    let (levels, dropped) = tokio::task::spawn_blocking(move || {
        poll("every line counted or dropped", Duration::from_secs(60), || {
            let (levels, dropped) = counts(&db2, "flood");
            (levels.values().sum::<i64>() + dropped == SENT).then_some((levels, dropped))
        })
    })
    .await
    .unwrap();
    assert_eq!(levels.keys().collect::<Vec<_>>(), ["debug"]);
    assert!(
        levels["debug"] > 0,
        "some lines were counted: {levels:?}, {dropped} dropped"
    );
    drop((tap, taps));
}
