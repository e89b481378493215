//! Issue 13 end to end: a deadlock, a lock wait past deadlock_timeout, a
//! unique violation, a division by zero and a slow statement made on
//! purpose on a real lab reach the store with their SQLSTATEs and counts
//! and the dashboard (panels and log view, read back from headless
//! Chromium); two services' output lines, one JSON and one read by the
//! lab's `log_level` regex, are counted by level in the store, on
//! `/metrics` and on the dashboard's panel.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use testkit::locks::{connect, deadlock, until_waiting};
use testkit::{TestLab, poll};
use tokio_postgres::Client;

use crate::BIN;
use crate::dashboard::{CHROMIUM, data_points, http_get, section};

const LAB: &str = r#"
name = "logdash"
postgres_version = 15

[postgres.db]
settings = { deadlock_timeout = "200ms" }

[sample]
interval = "200ms"
sinks = ["embedded", "prometheus"]

[service.api]
command = ["sh", "-c", '''printf '%s\n' '{"level":"info","msg":"one"}' '{"level":"INFO","msg":"two"}' '{"lvl":"info","msg":"three"}' '{"lvl":"WARNING","msg":"slow"}' '{"severity":"Error","msg":"boom"}' 'a plain line'; exec sleep 3600''']

[service.worker]
command = ["sh", "-c", '''printf '%s\n' '10:00:00 [WARN] queue slow' '10:00:01 [WARN] queue slow' '10:00:02 [ERROR] queue gone'; exec sleep 3600''']
log_level = '^\S+ \[(?P<level>[A-Z]+)\]'
"#;

/// `tags (k=v,…) -> sum of field` of a measurement in the lab's store.
fn sums(db: &Path, measurement: &str, field: &str, by: &[&str]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for s in store::query::series(db, measurement, None, 0, Duration::ZERO).unwrap_or_default() {
        if s.field != field {
            continue;
        }
        let key: Vec<String> = by
            .iter()
            .map(|k| format!("{k}={}", s.tags.get(*k).map_or("", String::as_str)))
            .collect();
        *out.entry(key.join(",")).or_default() += s.points.iter().map(|p| p.1).sum::<f64>() as i64;
    }
    out
}

fn errors(db: &Path) -> BTreeMap<String, i64> {
    let mut all = sums(db, "pg_log", "count", &["severity", "sqlstate"]);
    all.retain(|k, _| k.starts_with("severity=ERROR"));
    all
}

async fn pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

/// A holds row 10 until B's wait is in the store (past deadlock_timeout,
/// logged by log_lock_waits); returns A's pid, the blocker.
async fn lock_wait(url: &str, observer: &Client, db: &Path) -> i32 {
    let (a, b) = (connect(url).await, connect(url).await);
    let (holder, waiter_pid) = (pid(&a).await, pid(&b).await);
    a.batch_execute("BEGIN; UPDATE t SET v = 3 WHERE id = 10")
        .await
        .unwrap();
    let waiter = tokio::spawn(async move { b.batch_execute("UPDATE t SET v = 4 WHERE id = 10").await });
    until_waiting(observer, waiter_pid).await;
    let db = db.to_path_buf();
    tokio::task::spawn_blocking(move || {
        poll("the lock wait in the events", Duration::from_secs(60), || {
            let events = store::query::events(&db, 0).ok()?;
            events
                .iter()
                .any(|e| matches!(&e.kind, model::EventKind::LockWait { blocking_pid: Some(p), .. } if *p == i64::from(holder)))
                .then_some(())
        })
    })
    .await
    .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    waiter.await.unwrap().unwrap();
    holder
}

/// The database URL `prodhome env NODE` prints.
fn url(lab: &TestLab, node: &str) -> String {
    let out = lab.run(&["env", node]);
    assert!(out.status.success(), "{}", crate::text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("export DATABASE_URL="))
        .unwrap_or_else(|| panic!("no DATABASE_URL in {text}"))
        .to_string()
}

#[test]
fn deadlocks_lock_waits_errors_slow_statements_and_service_levels_reach_store_and_dashboard() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test needs Debian's `chromium` package; `bash .ci/run` installs it"
    );
    let lab = TestLab::new(BIN).lab(LAB);
    lab.up();
    let db = lab.state().join("metrics.db");
    let api = lab.status()["api"].as_str().unwrap().to_string();
    lab.sql(
        "db",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g",
    );
    for sql in ["SELECT 1/0", "INSERT INTO t VALUES (1, 0)"] {
        let out = lab.run(&["psql", "db", "-v", "ON_ERROR_STOP=1", "-Atc", sql]);
        assert!(!out.status.success(), "{sql} fails");
    }
    lab.sql("db", "SELECT pg_sleep(0.4)");
    let url = url(&lab, "db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let holder = runtime.block_on(async {
        let observer = connect(&url).await;
        deadlock(&url, &observer).await;
        lock_wait(&url, &observer, &db).await
    });

    // The store: one of each error, the deadlock, the lock waits, the
    // slow statement; and every service line by its level.
    let want_errors: BTreeMap<String, i64> = ["22012", "23505", "40P01"]
        .iter()
        .map(|c| (format!("severity=ERROR,sqlstate={c}"), 1))
        .collect();
    let want_services: BTreeMap<String, i64> = [
        ("service=api,level=error", 1),
        ("service=api,level=info", 3),
        ("service=api,level=unknown", 1),
        ("service=api,level=warn", 1),
        ("service=worker,level=error", 1),
        ("service=worker,level=warn", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // The lock waits' count comes with the interval after its event.
    let sleep = pglog::query_hash("SELECT pg_sleep($1)");
    let counts = || {
        (
            errors(&db),
            sums(&db, "pg_deadlocks", "count", &[]).values().sum::<i64>(),
            // The waiting UPDATEs may be slow too: count the sleep's.
            sums(&db, "pg_slow_statements", "count", &["query"])
                .get(&format!("query={sleep}"))
                .copied()
                .unwrap_or(0),
            sums(&db, "service_log_lines", "count", &["service", "level"]),
            sums(&db, "pg_lock_waits", "count", &[]).values().sum::<i64>() >= 1,
        )
    };
    let want = (want_errors, 1, 1, want_services, true);
    let mut last = counts();
    for _ in 0..300 {
        if last == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        last = counts();
    }
    assert_eq!(
        last, want,
        "the logs' counts in the store (errors, deadlocks, slow, services, lock waits)"
    );
    assert!(
        sums(&db, "service_log_dropped", "count", &[])
            .values()
            .all(|n| *n == 0)
    );

    // /metrics: the Prometheus sink sums the deltas into counters.
    let metrics = http_get(&format!("{api}/metrics")).expect("/metrics answers");
    let counter = |service: &str, level: &str| {
        metrics.lines().find(|l| {
            l.starts_with("prodhome_service_log_lines_total{")
                && l.contains(&format!("service=\"{service}\""))
                && l.contains(&format!("level=\"{level}\""))
        })
    };
    for (service, level, n) in [("api", "info", 3), ("worker", "warn", 2), ("api", "unknown", 1)] {
        let line =
            counter(service, level).unwrap_or_else(|| panic!("no {service} {level} in /metrics:\n{metrics}"));
        assert_eq!(
            line.rsplit(' ').next().map(|v| v.parse::<f64>().ok()),
            Some(Some(n as f64)),
            "{line}"
        );
    }

    // The log view's server filters: level and text.
    let deadlocks = http_get(&format!("{api}/api/log?since=all&level=error&grep=deadlock")).unwrap();
    let lines: serde_json::Value = serde_json::from_str(&deadlocks).unwrap();
    let kinds: Vec<&str> = lines
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"deadlock") && kinds.iter().all(|k| *k == "deadlock" || *k == "log_error"),
        "{deadlocks}"
    );

    let profile = lab.dir().join("chromium");
    let dom = testkit::chromium::run(&profile, "1280,800", 8000, &["--dump-dom"], &format!("{api}/"));
    let errors_panel = section(&dom, "log_errors");
    for code in ["22012", "23505", "40P01"] {
        assert!(
            errors_panel.contains(code),
            "no {code} in the errors panel:\n{errors_panel}"
        );
    }
    let locks = section(&dom, "log_locks");
    for label in ["deadlocks db", "lock waits db"] {
        assert!(
            drew_above_zero(locks, label),
            "{label} never above 0 on the page:\n{locks}"
        );
    }
    let slow = section(&dom, "slow_statements");
    assert!(
        drew_above_zero(slow, &format!("db {sleep}")),
        "no pg_sleep ({sleep}) drawn:\n{slow}"
    );
    let services = section(&dom, "service_logs");
    assert!(
        !services.split('>').next().unwrap_or("").contains("hidden"),
        "the services' panel is hidden:\n{services}"
    );
    assert!(
        data_points(&dom, "service_logs").is_some_and(|n| n > 1),
        "{services}"
    );
    for label in ["api info", "api warn", "worker warn", "worker error"] {
        assert!(
            drew_above_zero(services, label),
            "{label} never above 0 on the page:\n{services}"
        );
    }
    let log = &dom[dom.find("id=\"log-lines\"").expect("a log view")..];
    for text in [
        "deadlock between:",
        &format!("behind pid {holder}: UPDATE t SET v = 4 WHERE id = 10"),
        "ERROR 23505: duplicate key value violates unique constraint",
        "ERROR 22012: division by zero",
        "slow statement (",
    ] {
        assert!(log.contains(text), "no {text:?} in the log view:\n{log}");
    }
}

/// True when the panel's legend entry `label` has a `data-max` above 0.
fn drew_above_zero(panel: &str, label: &str) -> bool {
    panel.split("<li").any(|item| {
        let max = item
            .split("data-max=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .and_then(|v| v.parse::<f64>().ok());
        item.contains(&format!("</i>{label}<")) && max.is_some_and(|m| m > 0.0)
    })
}
