//! The Prometheus sink, scraped by a real Prometheus server.

use std::time::Duration;

use model::Point;
use store::StoreOptions;
use testkit::free_port;

use crate::util::{Server, poll};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_metrics_without_errors() {
    let store = store::start(StoreOptions {
        prometheus: true,
        ..Default::default()
    })
    .unwrap();
    store.points().send(vec![
        Point::new("locks", model::now_ns())
            .tag("node", "publisher")
            .int("waiting", 3)
            .float("oldest_wait_s", 1.25),
        Point::new("locks", model::now_ns())
            .tag("node", "publisher")
            .tag("mode", "AccessShareLock")
            .tag("locktype", "relation")
            .tag("granted", "true")
            .int("count", 12),
    ]);
    store.flush().await;

    // The daemon's job in production: serve the text at /metrics.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get({
            let store = store.clone();
            move || async move {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    store.prometheus_text().unwrap_or_default(),
                )
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prodhome\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let prometheus = Server::start(
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
    let http = reqwest::Client::new();
    let health = poll("prometheus to scrape the target", Duration::from_secs(60), || {
        let http = http.clone();
        async move {
            let text = http
                .get(format!("http://127.0.0.1:{port}/api/v1/targets"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            let t = v["data"]["activeTargets"].as_array()?.first()?.clone();
            (t["health"] != "unknown").then_some(t)
        }
    })
    .await;
    assert_eq!(health["health"], "up", "{health}\n{}", prometheus.log_text());
    assert_eq!(health["lastError"], "", "{health}");

    let url = reqwest::Url::parse_with_params(
        &format!("http://127.0.0.1:{port}/api/v1/query"),
        &[(
            "query",
            "prodhome_locks{mode=\"AccessShareLock\",node=\"publisher\"}",
        )],
    )
    .unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&http.get(url).send().await.unwrap().text().await.unwrap()).unwrap();
    let sample = &result["data"]["result"][0];
    assert_eq!(sample["value"][1], "12", "{result}");
    assert_eq!(sample["metric"]["granted"], "true", "{result}");
    server.abort();
}
