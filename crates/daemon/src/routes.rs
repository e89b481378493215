//! The control API's HTTP routes (types in the `api` crate).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::up::Lab;
use crate::{eventlog, status};

pub(crate) fn router(lab: Arc<Lab>) -> Router {
    Router::new()
        .route("/api/status", get(get_status))
        .route("/api/events", get(get_events))
        .route("/api/down", post(post_down))
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
