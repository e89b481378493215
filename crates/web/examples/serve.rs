//! Serves the dashboard over a store file without a lab, for the benchmark
//! and for working on the page: `web::router` plus stand-ins for the two
//! routes the daemon owns (`/api/events` from the store's events,
//! `/api/status` saying three ready nodes).
//!
//!     cargo run -p web --example serve -- DB [PORT]
//!
//! Prints the URL once it listens (127.0.0.1 only).

use std::path::PathBuf;

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Since {
    since: Option<i64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(db) = args.first().map(PathBuf::from) else {
        eprintln!("usage: serve DB [PORT]");
        std::process::exit(2);
    };
    let port: u16 = args.get(1).map_or(0, |p| p.parse().expect("PORT is a number"));
    let events_db = db.clone();
    let app = web::router(db)
        .route(
            "/api/events",
            get(move |Query(q): Query<Since>| {
                let db = events_db.clone();
                async move { Json(store::query::events(&db, q.since.unwrap_or(0)).unwrap_or_default()) }
            }),
        )
        .route("/api/status", get(|| async { Json(status()) }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("http://{}/", listener.local_addr().expect("address"));
    axum::serve(listener, app).await.expect("serve");
}

fn status() -> Value {
    let node = |name: &str| {
        json!({ "name": name, "kind": "postgres", "state": "ready", "pid": 1, "port": 5432,
                "restarts": u32::from(name == "subscriber1"), "last_exit": null, "since_ns": 0 })
    };
    let link = |sub: &str| {
        json!({ "name": "books", "publisher": "publisher", "subscriber": sub,
                "state": "streaming", "lag_bytes": 0 })
    };
    json!({
        "lab": "bookstore", "api": "", "phase": "ready",
        "nodes": [node("publisher"), node("subscriber1"), node("subscriber2")],
        "replication": [link("subscriber1"), link("subscriber2")],
    })
}
