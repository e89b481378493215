//! The Grafana export: checked against the dashboard JSON model, against
//! what the sampler and hum really write, and answered by a real InfluxDB
//! and a real Prometheus holding the lab's points as the store's sinks
//! write them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use store::{InfluxApi, InfluxOptions, StoreOptions};
use testkit::free_port;
use web::{Datasource, PANELS, grafana_export};

use crate::util::{S, Server, panel_points, poll};

fn influx(url: &str) -> Datasource {
    Datasource::Influx {
        url: url.into(),
        database: "lab".into(),
        token_env: None,
    }
}

fn prometheus(url: &str) -> Datasource {
    Datasource::Prometheus { url: url.into() }
}

/// The queries of every panel: (panel title, query text).
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let text = target["query"].as_str().or(target["expr"].as_str()).unwrap();
            out.push((panel["title"].as_str().unwrap().to_string(), text.to_string()));
        }
    }
    out
}

#[test]
fn the_export_follows_the_dashboard_json_model_for_both_datasources() {
    let out = Path::new("/tmp/grafana-out");
    for (ds, kind, uid) in [
        (influx("http://127.0.0.1:8086"), "influxdb", "prodhome-influx"),
        (
            prometheus("http://127.0.0.1:9090"),
            "prometheus",
            "prodhome-prometheus",
        ),
    ] {
        let export = grafana_export("bookstore", &ds, out);
        let d = &export.dashboard;
        assert_eq!(d["title"], "prodhome: bookstore");
        let dash_uid = d["uid"].as_str().unwrap();
        assert!(!dash_uid.is_empty() && dash_uid.len() <= 40, "{dash_uid}");
        assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
        let panels = d["panels"].as_array().unwrap();
        // The same panels as the page, in the same order.
        let titles: Vec<&str> = panels.iter().map(|p| p["title"].as_str().unwrap()).collect();
        let page: Vec<&str> = PANELS.iter().map(|p| p.title).collect();
        assert_eq!(titles, page);

        let mut ids = BTreeSet::new();
        let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
        for (panel, spec) in panels.iter().zip(PANELS) {
            let title = spec.title;
            assert!(ids.insert(panel["id"].as_u64().unwrap()), "{title}: duplicate id");
            assert!(
                ["timeseries", "state-timeline", "bargauge"].contains(&panel["type"].as_str().unwrap()),
                "{title}: {}",
                panel["type"]
            );
            assert_eq!(panel["datasource"]["type"], kind, "{title}");
            assert_eq!(panel["datasource"]["uid"], uid, "{title}");
            assert_eq!(
                panel["fieldConfig"]["defaults"]["unit"],
                spec.unit.grafana(),
                "{title}"
            );
            let pos = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| pos[k].as_u64().unwrap());
            assert!(w > 0 && h > 0 && x + w <= 24, "{title}: {pos}");
            // No two panels share a grid cell.
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{title} overlaps another panel at {cx},{cy}"
                    );
                }
            }
            let targets = panel["targets"].as_array().unwrap();
            assert_eq!(targets.len(), spec.queries.len(), "{title}");
            let refs: BTreeSet<&str> = targets.iter().map(|t| t["refId"].as_str().unwrap()).collect();
            assert_eq!(refs.len(), targets.len(), "{title}: refIds repeat");
            for (target, q) in targets.iter().zip(spec.queries) {
                assert_eq!(target["datasource"]["uid"], uid);
                match kind {
                    "influxdb" => {
                        let text = target["query"].as_str().unwrap();
                        assert!(text.contains(&format!("FROM \"{}\"", q.measurement)), "{text}");
                        assert!(text.contains(&format!("mean(\"{}\")", q.field)), "{text}");
                        assert!(
                            text.contains("$timeFilter") && text.contains("$__interval"),
                            "{text}"
                        );
                        assert_eq!(target["rawQuery"], true);
                    }
                    _ => {
                        let text = target["expr"].as_str().unwrap();
                        assert!(
                            text.contains(&web::grafana::metric_name(q.measurement, q.field)),
                            "{text}"
                        );
                    }
                }
            }
        }

        // The files: the dashboard itself and provisioning that points at it.
        let files: BTreeMap<PathBuf, &String> = export.files.iter().map(|(p, t)| (p.clone(), t)).collect();
        let on_disk: Value = serde_json::from_str(files[Path::new(web::grafana::DASHBOARD_FILE)]).unwrap();
        assert_eq!(&on_disk, d);
        let sources = files[Path::new("provisioning/datasources/prodhome.yaml")];
        assert!(sources.contains("apiVersion: 1"), "{sources}");
        assert!(sources.contains(&format!("uid: {uid}")), "{sources}");
        assert!(sources.contains(&format!("type: {kind}")), "{sources}");
        let providers = files[Path::new("provisioning/dashboards/prodhome.yaml")];
        assert!(providers.contains("type: file"), "{providers}");
        assert!(
            providers.contains("path: \"/tmp/grafana-out/dashboards\""),
            "{providers}"
        );
        assert!(files.keys().all(|p| p.is_relative()));
    }
}

/// Every (measurement, field) the catalogue reads is written by the sampler
/// (one of its `MEASUREMENTS`), pglog, the engine's stats or hum: a source file that makes points
/// of that measurement also sets that field.
#[test]
fn every_panel_reads_a_measurement_and_field_the_sampler_or_hum_writes() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut sources = Vec::new();
    for dir in ["sampler/src", "hum/src", "pglog/src", "engine/src"] {
        rust_files(&crates.join(dir), &mut sources);
    }
    assert!(
        sources.len() > 5,
        "no sampler or hum sources under {}",
        crates.display()
    );
    for panel in PANELS {
        for q in panel.queries {
            assert!(
                sampler::MEASUREMENTS.contains(&q.measurement)
                    || pglog::MEASUREMENTS.contains(&q.measurement)
                    || q.measurement == "hum"
                    || q.measurement == engine::stats::MEASUREMENT,
                "panel {}: `{}` is neither a sampler measurement ({:?}) nor hum's, pglog's or the engine's",
                panel.id,
                q.measurement,
                sampler::MEASUREMENTS
            );
            let makes = |text: &String| {
                text.contains(&format!("point(\"{}\")", q.measurement))
                    || text.contains(&format!("Point::new(\"{}\"", q.measurement))
                    // The engine's stats name theirs in a constant.
                    || (text.contains(&format!("const MEASUREMENT: &str = \"{}\"", q.measurement))
                        && text.contains("Point::new(MEASUREMENT"))
            };
            let sets = |text: &String| {
                [".int", ".float"]
                    .iter()
                    .any(|m| text.contains(&format!("{m}(\"{}\"", q.field)))
            };
            assert!(
                sources.iter().any(|(_, text)| makes(text) && sets(text)),
                "panel {}: no sampler or hum source writes field `{}` of `{}`",
                panel.id,
                q.field,
                q.measurement
            );
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Grafana's macros, as Grafana fills them in for "the last 10 minutes".
fn as_grafana_sends(query: &str) -> String {
    query
        .replace("$timeFilter", "time > now() - 10m")
        .replace("$__interval", "1s")
}

#[tokio::test]
async fn a_real_influxdb_answers_every_panel_query_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let (http_port, rpc) = (free_port(), free_port());
    let root = dir.path().display();
    let config = format!(
        "reporting-enabled = false\nbind-address = \"127.0.0.1:{rpc}\"\n\
         [meta]\n  dir = \"{root}/meta\"\n\
         [data]\n  dir = \"{root}/data\"\n  wal-dir = \"{root}/wal\"\n  query-log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n"
    );
    let file = dir.path().join("influxdb.conf");
    std::fs::write(&file, config).unwrap();
    let influxd = Server::start(
        "/usr/bin/influxd",
        "influxdb",
        &["run".into(), "-config".into(), file.display().to_string()],
        &dir.path().join("influxd.log"),
        http_port,
    );
    let base = format!("http://127.0.0.1:{}", influxd.port);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    poll("influxd to answer /ping", Duration::from_secs(30), || {
        let (http, base) = (http.clone(), base.clone());
        async move { (http.get(format!("{base}/ping")).send().await.ok()?.status() == 204).then_some(()) }
    })
    .await;
    let create =
        reqwest::Url::parse_with_params(&format!("{base}/query"), &[("q", "CREATE DATABASE lab")]).unwrap();
    assert!(http.post(create).send().await.unwrap().status().is_success());

    // The lab's points and an event, through the store's own influx sink.
    let store = store::start(StoreOptions {
        influx: Some(InfluxOptions {
            url: base.clone(),
            api: InfluxApi::V1 { db: "lab".into() },
            batch: 5000,
            buffer: 100_000,
            lab: Some("lab".into()),
            create_database: false,
        }),
        ..Default::default()
    })
    .unwrap();
    let now = model::now_ns();
    let t0 = now - now.rem_euclid(S) - 59 * S;
    store.points().send(panel_points(t0, 60));
    store.event(model::Event::now(
        "subscriber1",
        model::EventKind::Exited {
            exit: model::Exit {
                code: None,
                signal: Some(9),
            },
            expected: false,
        },
    ));
    store.flush().await;
    let stats = store.stats();
    assert_eq!(
        stats.sink("influx").unwrap().failed,
        0,
        "{stats:?}\n{}",
        influxd.log_text()
    );

    let export = grafana_export("lab", &influx(&base), dir.path());
    let query = |q: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let url = reqwest::Url::parse_with_params(&format!("{base}/query"), &[("db", "lab"), ("q", &q)])
                .unwrap();
            let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            body
        }
    };
    for (title, text) in queries(&export.dashboard) {
        let body = query(as_grafana_sends(&text)).await;
        let result = &body["results"][0];
        assert!(result["error"].is_null(), "{title}: {text}\n{body}");
        let series = result["series"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no series\n{text}\n{body}"));
        let values = series[0]["values"].as_array().unwrap();
        assert!(values.len() > 1, "{title}: {body}");
    }
    // Locks by mode sums the two locktypes of mode Share: 1 + 1 at t0.
    let locks = PANELS.iter().find(|p| p.id == "locks_by_mode").unwrap().queries[0];
    let body = query(as_grafana_sends(&web::grafana::influxql(&locks, "lab")) + " LIMIT 1").await;
    let share = body["results"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tags"]["mode"] == "Share" && s["tags"]["node"] == "publisher")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(share["values"][0][1], 2.0, "{share}");
    // The annotation query finds the event.
    let annotation = &export.dashboard["annotations"]["list"][1];
    let body = query(as_grafana_sends(annotation["query"].as_str().unwrap())).await;
    assert!(body.to_string().contains("subscriber1"), "{body}");
}

#[tokio::test]
async fn a_real_prometheus_scraping_the_store_answers_every_panel_query() {
    let dir = tempfile::tempdir().unwrap();
    // The store's prometheus sink, served at /metrics as the daemon does.
    let store = store::start(StoreOptions {
        prometheus: true,
        ..Default::default()
    })
    .unwrap();
    store.points().send(panel_points(model::now_ns(), 1));
    store.flush().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let metrics = store.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let store = metrics.clone();
            async move { store.prometheus_text().unwrap_or_default() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prodhome\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        "/usr/bin/prometheus",
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &dir.path().join("prometheus.log"),
        port,
    );
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let export = grafana_export("lab", &prometheus(&base), dir.path());
    // Scrapes start several seconds after Prometheus does: wait for data.
    for (title, expr) in queries(&export.dashboard) {
        let body = poll(
            &format!("Prometheus to answer `{expr}` ({title})"),
            Duration::from_secs(60),
            || {
                let (http, base, expr, title) = (http.clone(), base.clone(), expr.clone(), title.clone());
                async move {
                    let url =
                        reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), &[("query", &expr)])
                            .ok()?;
                    let body: Value = http.get(url).send().await.ok()?.json().await.ok()?;
                    assert_ne!(body["status"], "error", "{title}: {expr}\n{body}");
                    (!body["data"]["result"].as_array()?.is_empty()).then_some(body)
                }
            },
        )
        .await;
        assert_eq!(body["data"]["resultType"], "vector", "{body}");
    }
    let locks = PANELS.iter().find(|p| p.id == "locks_by_mode").unwrap().queries[0];
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/query"),
        &[("query", &web::grafana::promql(&locks))],
    )
    .unwrap();
    let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    let share = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"]["mode"] == "Share" && r["metric"]["node"] == "publisher")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        share["value"][1],
        "2",
        "two locktypes of 1 each: {share}\n{}",
        server.log_text()
    );
}
