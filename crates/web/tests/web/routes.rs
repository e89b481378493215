//! The router over a real store file (written with the store's own
//! embedded writer), served on a free loopback port, read over real HTTP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use model::{Event, EventKind};
use serde_json::Value;
use store::{EmbeddedOptions, EmbeddedWriter};

use crate::util::{S, panel_points};

/// The router on 127.0.0.1:0, served until the test's runtime ends.
async fn serve(db: PathBuf) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, web::router(db)).await });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> (u16, String, String) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

async fn get_json(url: &str) -> Value {
    let (status, _, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Writes `secs` seconds (ending now) of [`panel_points`] and one event
/// at the start; returns the first point's time.
fn fill(db: &Path, secs: i64) -> i64 {
    let mut writer = EmbeddedWriter::open(&EmbeddedOptions {
        path: db.to_path_buf(),
        retention: Duration::from_secs(86_400),
    })
    .unwrap();
    let now = model::now_ns();
    let t0 = now - now.rem_euclid(S) - (secs - 1) * S;
    let events = [Event {
        ts_ns: t0,
        unit: "publisher".into(),
        kind: EventKind::Started { pid: 42 },
    }];
    writer.write(&panel_points(t0, secs), &events).unwrap();
    t0
}

#[tokio::test]
async fn dashboard_serves_every_panel_grouped_from_a_real_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let t0 = fill(&db, 120);
    let api = serve(db).await;

    let d = get_json(&format!("{api}/api/dashboard?since=5m&step=auto")).await;
    assert_eq!(d["step_ms"], 1000, "5 minutes fit in 1 s buckets");
    for panel in web::PANELS {
        let frame = &d["panels"][panel.id];
        let t = frame["t"].as_array().unwrap();
        assert_eq!(t.len(), 120, "{}: {frame}", panel.id);
        assert_eq!(t[0].as_i64().unwrap(), t0 / 1_000_000);
        assert!(!frame["series"].as_array().unwrap().is_empty(), "{}", panel.id);
    }
    // Locks by mode: one series per node and mode, summed over locktype.
    let locks = &d["panels"]["locks_by_mode"]["series"];
    let labels: Vec<&str> = locks
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"publisher Share"), "{labels:?}");
    assert_eq!(labels.len(), 6, "{labels:?}");
    let share = locks
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "publisher Share")
        .unwrap();
    assert_eq!(share["values"][0], 2.0, "two locktypes of 1 each");
    assert_eq!(share["tags"]["mode"], "Share");
    // Latency carries its alias in the legend.
    let latency = &d["panels"]["hum_latency"]["series"];
    assert!(
        latency
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["label"] == "p99 subscriber2"),
        "{latency}"
    );

    // Ten-second buckets average ten samples each.
    let d = get_json(&format!("{api}/api/dashboard?since=5m&step=10s&panels=cpu")).await;
    assert_eq!(d["step_ms"], 10_000);
    assert_eq!(d["panels"].as_object().unwrap().len(), 1);
    let cpu = &d["panels"]["cpu"];
    assert!(cpu["t"].as_array().unwrap().len() <= 13, "{cpu}");

    // A poll from a time in ns returns only what is newer.
    let since = t0 + 100 * S;
    let d = get_json(&format!(
        "{api}/api/dashboard?since={since}&step=1s&panels=hum_tps"
    ))
    .await;
    let t = d["panels"]["hum_tps"]["t"].as_array().unwrap();
    assert_eq!(t.len(), 20);
    assert_eq!(d["panels"]["hum_tps"]["series"][0]["values"][0], 100.0);

    // `all` starts at the lab's first event; so does a window longer than
    // the lab's life, its step fitted to what there is.
    let d = get_json(&format!("{api}/api/dashboard?since=all")).await;
    assert_eq!(d["since_ns"].as_i64().unwrap(), t0);
    let d = get_json(&format!("{api}/api/dashboard?since=1h&panels=cpu")).await;
    assert_eq!(d["since_ns"].as_i64().unwrap(), t0);
    assert_eq!(
        d["step_ms"], 1000,
        "two minutes of data, not an hour, in 360 buckets"
    );
}

#[tokio::test]
async fn series_returns_stored_samples_and_bad_parameters_say_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    fill(&db, 30);
    let api = serve(db).await;

    let all = get_json(&format!("{api}/api/series?measurement=process&since=5m")).await;
    let all = all.as_array().unwrap();
    // process: processes, cpu_percent, pss_bytes, rss_bytes on three nodes.
    assert_eq!(all.len(), 12, "{all:?}");
    let one = get_json(&format!(
        "{api}/api/series?measurement=process&node=subscriber1&field=cpu_percent&since=5m"
    ))
    .await;
    let one = one.as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["tags"]["node"], "subscriber1");
    let points = one[0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 30);
    assert_eq!(points[29][1], 29.0);
    let coarse = get_json(&format!(
        "{api}/api/series?measurement=process&field=cpu_percent&since=5m&step=1m"
    ))
    .await;
    assert!(coarse[0]["points"].as_array().unwrap().len() <= 2, "{coarse}");

    let (status, _, body) = get(&format!("{api}/api/series?since=5m")).await;
    assert_eq!(status, 400);
    assert!(body.contains("measurement is required"), "{body}");
    let (status, _, body) = get(&format!("{api}/api/series?measurement=locks&since=5 parsecs")).await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown unit"), "{body}");
    let (status, _, body) = get(&format!("{api}/api/dashboard?panels=nope")).await;
    assert_eq!(status, 400);
    assert!(body.contains("no panel nope"), "{body}");
}

#[tokio::test]
async fn without_a_store_yet_the_dashboard_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let api = serve(dir.path().join("metrics.db")).await;
    let d = get_json(&format!("{api}/api/dashboard?since=5m")).await;
    assert!(d["message"].as_str().unwrap().contains("no metrics store"), "{d}");
    assert!(d["panels"].as_object().unwrap().is_empty());
    let (status, _, body) = get(&format!("{api}/api/series?measurement=locks")).await;
    assert_eq!(status, 503);
    assert!(body.contains("prodhome up"), "{body}");
}

#[tokio::test]
async fn the_page_and_every_asset_it_names_are_served_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let api = serve(dir.path().join("metrics.db")).await;
    let (status, kind, page) = get(&format!("{api}/")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    // The catalogue is inlined: the page knows every panel on first paint.
    for panel in web::PANELS {
        assert!(page.contains(&format!("\"id\":\"{}\"", panel.id)), "{}", panel.id);
    }
    assert!(!page.contains("/*CATALOGUE*/"));
    // Nothing from elsewhere: every src/href is one of ours.
    let mut named = 0;
    for attr in ["src=\"", "href=\""] {
        for part in page.split(attr).skip(1) {
            let url = &part[..part.find('"').unwrap()];
            assert!(
                url.starts_with("/assets/"),
                "page loads {url} from outside the binary"
            );
            let (status, kind, body) = get(&format!("{api}{url}")).await;
            assert_eq!(status, 200, "{url}");
            assert!(!body.is_empty() && !kind.is_empty(), "{url}");
            named += 1;
        }
    }
    assert_eq!(named, 3, "script, style and icon");
    let (status, _, _) = get(&format!("{api}/assets/nope.js")).await;
    assert_eq!(status, 404);
    let panels = get_json(&format!("{api}/api/panels")).await;
    assert_eq!(panels.as_array().unwrap().len(), web::PANELS.len());
}

#[tokio::test]
async fn the_log_view_serves_log_events_filtered_by_node_level_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let mut writer = EmbeddedWriter::open(&EmbeddedOptions {
        path: db.clone(),
        retention: Duration::from_secs(86_400),
    })
    .unwrap();
    let now = model::now_ns();
    let error = |code: &str, message: &str| EventKind::LogError {
        severity: "ERROR".into(),
        sqlstate: code.into(),
        message: message.into(),
    };
    let events = [
        ("publisher", error("22012", "division by zero")),
        ("publisher", EventKind::Ready),
        (
            "subscriber1",
            error("23505", "duplicate key value violates unique constraint"),
        ),
        (
            "publisher",
            EventKind::SlowStatement {
                query: "SELECT pg_sleep($1)".into(),
                duration_ms: 300,
            },
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (unit, kind))| Event {
        ts_ns: now - (10 - i as i64) * S,
        unit: unit.into(),
        kind,
    })
    .collect::<Vec<_>>();
    writer.write(&[], &events).unwrap();
    let api = serve(db).await;

    let all = get_json(&format!("{api}/api/log?since=5m")).await;
    let texts: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "slow statement (300 ms): SELECT pg_sleep($1)",
            "ERROR 23505: duplicate key value violates unique constraint",
            "ERROR 22012: division by zero",
        ]
    );
    assert_eq!(all[0]["level"], "log");
    assert_eq!(all[0]["kind"], "slow_statement");
    assert_eq!(all[1]["node"], "subscriber1");

    let one = get_json(&format!(
        "{api}/api/log?since=5m&node=publisher&level=error&grep=DIVISION"
    ))
    .await;
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one[0]["text"], "ERROR 22012: division by zero");
    // Empty parameters (the page's "all") filter nothing.
    let empty = get_json(&format!("{api}/api/log?since=5m&node=&level=&grep=&limit=2")).await;
    assert_eq!(empty.as_array().unwrap().len(), 2, "{empty}");
    let none = get_json(&format!("{api}/api/log?since=5m&node=subscriber1&grep=division")).await;
    assert!(none.as_array().unwrap().is_empty(), "{none}");
    let (status, _, body) = get(&format!("{api}/api/log?since=5 parsecs")).await;
    assert_eq!(status, 400, "{body}");
}
