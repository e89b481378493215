//! The control API's HTTP routes (types in the `api` crate).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::up::Lab;
use crate::{eventlog, status};

pub(crate) fn router(lab: Arc<Lab>) -> Router {
    Router::new()
        .route("/api/status", get(get_status))
        .route("/api/events", get(get_events))
        .route("/api/down", post(post_down))
        .route("/api/chaos", get(get_chaos).post(post_chaos))
        .route("/api/chaos/heal", post(post_heal))
        .route("/metrics", get(get_metrics))
        .route("/api/units/{name}/{action}", post(post_unit))
        .with_state(lab)
}

async fn get_status(State(lab): State<Arc<Lab>>) -> Json<api::Status> {
    Json(status::build(&lab).await)
}

#[derive(Deserialize)]
struct Since {
    since: Option<i64>,
}

async fn get_events(State(lab): State<Arc<Lab>>, Query(q): Query<Since>) -> Json<Vec<model::Event>> {
    Json(eventlog::read(&lab.state.events(), q.since.unwrap_or(0)))
}

async fn post_down(State(lab): State<Arc<Lab>>) -> &'static str {
    lab.shutdown.notify_one();
    "stopping\n"
}

async fn get_chaos(State(lab): State<Arc<Lab>>) -> Json<Vec<api::ActiveFault>> {
    Json(lab.faults.list().await)
}

async fn post_chaos(
    State(lab): State<Arc<Lab>>,
    Json(fault): Json<chaos::Fault>,
) -> Result<Json<api::ActiveFault>, (StatusCode, String)> {
    lab.faults
        .apply(fault)
        .await
        .map(Json)
        .map_err(|reason| (StatusCode::BAD_REQUEST, reason))
}

async fn post_heal(State(lab): State<Arc<Lab>>) -> &'static str {
    lab.faults.heal_all().await;
    "healed\n"
}

/// The prometheus sink's exposition, for a Prometheus server to scrape.
async fn get_metrics(
    State(lab): State<Arc<Lab>>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), (StatusCode, &'static str)> {
    match lab.store.prometheus_text() {
        Some(text) => Ok((
            [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )),
        None => Err((
            StatusCode::NOT_FOUND,
            "the prometheus sink is off: add \"prometheus\" to [sample] sinks\n",
        )),
    }
}

/// Starts, stops or restarts one node or service.
async fn post_unit(
    State(lab): State<Arc<Lab>>,
    axum::extract::Path((name, action)): axum::extract::Path<(String, String)>,
) -> Result<String, (StatusCode, String)> {
    let unit = lab.units.get(&name).ok_or_else(|| {
        let known: Vec<&str> = lab.units.keys().map(String::as_str).collect();
        (
            StatusCode::NOT_FOUND,
            format!("no node or service {name:?}; there are {}", known.join(", ")),
        )
    })?;
    match action.as_str() {
        "start" => unit.start().await,
        "stop" => unit.stop().await,
        "restart" => unit.restart().await,
        other => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?}; use start, stop or restart"),
            ));
        }
    }
    Ok(format!("{action}: {name}\n"))
}
