//! The page itself in a real headless Chromium, over a real store: every
//! panel draws the stored points, events become annotations, and the
//! status bar reads the status. The daemon's two routes (`/api/events`,
//! `/api/status`) are stood in for here; the end-to-end test in
//! crates/prodhome runs the page against the real daemon.

use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use model::{Event, EventKind, Exit};
use serde_json::json;
use store::{EmbeddedOptions, EmbeddedWriter};

use crate::util::{S, panel_points};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_draws_its_points_and_a_killed_node_is_marked() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test needs Debian's `chromium` package; `bash .ci/run` installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let now = model::now_ns();
    let t0 = now - now.rem_euclid(S) - 119 * S;
    let killed = Event {
        ts_ns: t0 + 60 * S,
        unit: "subscriber1".into(),
        kind: EventKind::Exited {
            exit: Exit {
                code: None,
                signal: Some(9),
            },
            expected: false,
        },
    };
    // The lab's first event dates its start: the window begins there.
    let events = vec![
        Event {
            ts_ns: t0,
            unit: "subscriber1".into(),
            kind: EventKind::Ready,
        },
        killed,
        // A line of the publisher's log: in the log view, not a mark.
        Event {
            ts_ns: t0 + 70 * S,
            unit: "publisher".into(),
            kind: EventKind::LogError {
                severity: "ERROR".into(),
                sqlstate: "22012".into(),
                message: "division by zero".into(),
            },
        },
        // A migration: a span from its start to its end.
        Event {
            ts_ns: t0 + 80 * S,
            unit: "publisher".into(),
            kind: EventKind::Migration {
                phase: "started".into(),
                file: "add_index.sql".into(),
            },
        },
        Event {
            ts_ns: t0 + 90 * S,
            unit: "publisher".into(),
            kind: EventKind::Migration {
                phase: "finished".into(),
                file: "add_index.sql".into(),
            },
        },
    ];
    let mut writer = EmbeddedWriter::open(&EmbeddedOptions {
        path: db.clone(),
        retention: Duration::from_secs(3600),
    })
    .unwrap();
    writer.write(&panel_points(t0, 120), &events).unwrap();

    let nodes = ["publisher", "subscriber1", "subscriber2"].map(|n| {
        json!({ "name": n, "kind": "postgres", "state": "ready", "pid": 1, "port": 1,
                "restarts": 0, "last_exit": null, "since_ns": 0 })
    });
    let sinks = [
        json!({ "name": "embedded", "state": "ok", "written": 10, "failed": 0, "dropped": 0, "queued": 0, "last_error": null }),
        json!({ "name": "influx", "state": "failing", "written": 0, "failed": 861, "dropped": 0, "queued": 0,
                "last_error": "database not found: \"lab\" (InfluxDB at 127.0.0.1:8086 answered 404 Not Found to a write)" }),
    ];
    let status = json!({ "lab": "pagetest", "api": "", "phase": "ready", "nodes": nodes, "replication": [], "sinks": sinks });
    let app = web::router(db)
        .route("/api/events", get(move || async move { Json(events.clone()) }))
        .route("/api/status", get(move || async move { Json(status.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/#range=5m", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let profile = dir.path().join("profile");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&profile, &url))
        .await
        .unwrap();
    for panel in web::PANELS {
        let points = attr(&dom, &format!("data-panel=\"{}\"", panel.id), "data-points")
            .unwrap_or_else(|| panic!("no panel {} in the page:\n{dom}", panel.id));
        assert!(
            points.parse::<u64>().unwrap() > 1,
            "panel {} drew {points} points",
            panel.id
        );
    }
    // 120 one-second buckets of three nodes' hum lines, all in the window.
    assert_eq!(
        attr(&dom, "data-panel=\"hum_tps\"", "data-points").as_deref(),
        Some("360")
    );
    // The log view reads the store's events: only the log's line shows.
    assert_eq!(
        attr(&dom, "id=\"log-lines\"", "data-lines").as_deref(),
        Some("1"),
        "{dom}"
    );
    assert!(
        dom.contains("<i>error</i>ERROR 22012: division by zero</li>"),
        "{dom}"
    );
    // Bars rank the latest values: one bar per series, no time axis, so
    // no marks; the top statements' text is written on its bar.
    assert_eq!(
        attr(&dom, "data-panel=\"top_statements\"", "data-points").as_deref(),
        Some("3")
    );
    assert!(dom.contains(">subscriber2 text-a</text>"), "{dom}");
    let timed = web::PANELS.iter().filter(|p| p.chart != web::Chart::Bars).count();
    let marks = dom
        .matches(r#"class="annotation" data-kind="exited" data-unit="subscriber1""#)
        .count();
    assert_eq!(marks, timed, "one mark per panel with a time axis:\n{dom}");
    let spans = dom
        .matches(r#"class="annotation span" data-kind="migration" data-unit="publisher""#)
        .count();
    assert_eq!(
        spans, timed,
        "one migration span per panel with a time axis:\n{dom}"
    );
    // All nodes are ready, but the lag series end minutes high.
    assert_eq!(
        attr(&dom, "id=\"status\"", "data-healthy").as_deref(),
        Some("false"),
        "{dom}"
    );
    assert!(
        dom.contains("unhealthy · replication lag 6.0 min (limit 10 s)"),
        "{dom}"
    );
    assert!(
        dom.contains("· sink influx failing: database not found: \"lab\" (InfluxDB at 127.0.0.1:8086"),
        "a failing sink is on the health bar:\n{dom}"
    );
    assert!(!dom.contains("sink embedded"), "{dom}");
    assert!(dom.contains("prodhome pagetest"), "the lab's name is the title");
}

/// An attribute of the first element whose opening tag contains `marker`.
fn attr(dom: &str, marker: &str, name: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let open = dom[..at].rfind('<')?;
    let tag = &dom[open..at + dom[at..].find('>')?];
    let value = tag.split(&format!("{name}=\"")).nth(1)?;
    Some(value[..value.find('"')?].to_string())
}

/// Chromium's DOM of `url` after its first render and a poll or two.
fn dump_dom(profile: &Path, url: &str) -> String {
    testkit::chromium::run(profile, "1280,800", 3000, &["--dump-dom"], url)
}

/// A link whose worker keeps failing: the status bar names the subscriber
/// and its reason, and the health panel lists the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_replication_link_shows_its_error_in_the_status_bar_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let now = model::now_ns();
    let events = vec![
        Event {
            ts_ns: now - 30 * S,
            unit: "branch1".into(),
            kind: EventKind::Ready,
        },
        Event {
            ts_ns: now - 10 * S,
            unit: "branch1".into(),
            kind: EventKind::ReplicationError {
                subscription: "dispatch_branch1".into(),
                table: Some("public.orders".into()),
                message:
                    "duplicate key value violates unique constraint (23505). Key (id)=(7) already exists."
                        .into(),
                sqlstate: Some("23505".into()),
                advice: "delete the row on branch1".into(),
            },
        },
    ];
    let mut writer = EmbeddedWriter::open(&EmbeddedOptions {
        path: db.clone(),
        retention: Duration::from_secs(3600),
    })
    .unwrap();
    writer.write(&panel_points(now - 60 * S, 60), &events).unwrap();
    let nodes = ["hq", "branch1"].map(|n| {
        json!({ "name": n, "kind": "postgres", "state": "ready", "pid": 1, "port": 1,
                "restarts": 0, "last_exit": null, "since_ns": 0 })
    });
    let link = json!({ "name": "dispatch", "publisher": "hq", "subscriber": "branch1", "state": "error",
                       "lag_bytes": 0, "error": "subscription dispatch_branch1 failed on public.orders: duplicate key value" });
    let status =
        json!({ "lab": "linktest", "api": "", "phase": "ready", "nodes": nodes, "replication": [link] });
    let app = web::router(db)
        .route("/api/events", get(move || async move { Json(events.clone()) }))
        .route("/api/status", get(move || async move { Json(status.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/#range=5m", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let profile = dir.path().join("profile");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&profile, &url))
        .await
        .unwrap();
    assert_eq!(
        attr(&dom, "id=\"status\"", "data-healthy").as_deref(),
        Some("false"),
        "{dom}"
    );
    assert!(
        dom.contains("unhealthy · branch1 error: subscription dispatch_branch1 failed on public.orders: duplicate key value"),
        "{dom}"
    );
    assert!(
        dom.contains("branch1: subscription dispatch_branch1 failed on public.orders: duplicate key"),
        "the health panel lists the event:\n{dom}"
    );
}

/// A native lab writes no `container` points, a lab without services no
/// `service_log_lines`: the optional panels are hidden, every other panel
/// stays on the page; the first test shows them drawn when the points are
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_panels_hide_when_the_store_has_no_container_stats() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let now = model::now_ns();
    let events = vec![Event {
        ts_ns: now - 60 * S,
        unit: "publisher".into(),
        kind: EventKind::Ready,
    }];
    let mut points = panel_points(now - 60 * S, 60);
    // Nor does a lab without services write `service_log_lines`.
    let optional: Vec<&str> = web::PANELS
        .iter()
        .filter(|p| p.optional)
        .flat_map(|p| p.queries.iter().map(|q| q.measurement))
        .collect();
    assert!(optional.contains(&"container") && optional.contains(&"service_log_lines"));
    points.retain(|p| !optional.contains(&p.measurement.as_str()));
    let mut writer = EmbeddedWriter::open(&EmbeddedOptions {
        path: db.clone(),
        retention: Duration::from_secs(3600),
    })
    .unwrap();
    writer.write(&points, &events).unwrap();
    let status = json!({ "lab": "native", "api": "", "phase": "ready", "nodes": [], "replication": [] });
    let app = web::router(db)
        .route("/api/events", get(move || async move { Json(events.clone()) }))
        .route("/api/status", get(move || async move { Json(status.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/#range=5m", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let profile = dir.path().join("profile");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&profile, &url))
        .await
        .unwrap();
    assert!(web::PANELS.iter().any(|p| p.optional));
    for panel in web::PANELS {
        let marker = format!("data-panel=\"{}\"", panel.id);
        assert!(dom.contains(&marker), "no panel {} in the page:\n{dom}", panel.id);
        let hidden = attr(&dom, &marker, "hidden").is_some();
        assert_eq!(
            hidden, panel.optional,
            "panel {} hidden: {hidden}\n{dom}",
            panel.id
        );
    }
}
