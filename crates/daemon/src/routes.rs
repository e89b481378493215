//! The control API's HTTP routes (types in the `api` crate).
//!
//! Reading is open to every local account on 127.0.0.1 (status, events,
//! faults in force, /metrics, and the dashboard beside them): the
//! dashboard is meant to be shared. Changing the lab is the owner's: every
//! request other than GET or HEAD must carry `Authorization: Bearer TOKEN`,
//! the token in `api.token` that only the owner can read (see [`owner_only`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use model::Secret;
use serde::Deserialize;

use crate::faults::Subject;
use crate::running::Lab;
use crate::{eventlog, status};

pub(crate) fn router(lab: Arc<Lab>, token: Secret) -> Router {
    let guard = Arc::new(Owner {
        token,
        lab: lab.name.clone(),
        file: lab.state.api_token().display().to_string(),
    });
    Router::new()
        .route("/api/status", get(get_status))
        .route("/api/events", get(get_events).post(post_event))
        .route("/api/down", post(post_down))
        .route("/api/chaos", get(get_chaos).post(post_chaos))
        .route("/api/chaos/heal", post(post_heal))
        .route("/metrics", get(get_metrics))
        .route("/api/units/{name}/{action}", post(post_unit))
        // By method, not by route: a route added later is guarded too.
        .layer(middleware::from_fn_with_state(guard, owner_only))
        .with_state(lab)
}

/// What the guard needs: the token, and words for a refusal.
struct Owner {
    token: Secret,
    lab: String,
    file: String,
}

/// Lets reads through; anything else needs the owner's token, or it is
/// answered 401 before its handler runs (so nothing happens).
async fn owner_only(State(owner): State<Arc<Owner>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match sent {
        Some(sent) if owner.token.matches(sent.trim().as_bytes()) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!(
                "only the owner of lab {} may change it: send the token in {} (readable only by \
                 the account that started the lab) as `Authorization: Bearer TOKEN`, or run \
                 prodhome as that account. Reading (status, events, the dashboard) needs no token\n",
                owner.lab, owner.file
            ),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    /// Hold the answer up to this long while the lab is still starting.
    wait_ms: Option<u64>,
}

/// The longest a status request may be held.
const MAX_WAIT: Duration = Duration::from_secs(30);

async fn get_status(State(lab): State<Arc<Lab>>, Query(q): Query<StatusQuery>) -> Json<api::Status> {
    if let Some(ms) = q.wait_ms {
        // A long poll: `up -d` asks once and hears the moment start-up
        // ends, instead of building a full status (with its queries to
        // every node) ten times a second while the lab comes up.
        let mut phase = lab.phase.subscribe();
        let limit = Duration::from_millis(ms).min(MAX_WAIT);
        let _ = tokio::time::timeout(limit, phase.wait_for(|(p, _)| p != "starting")).await;
    }
    Json(status::build(&lab).await)
}

#[derive(Deserialize)]
struct Since {
    since: Option<i64>,
}

async fn get_events(State(lab): State<Arc<Lab>>, Query(q): Query<Since>) -> Json<Vec<model::Event>> {
    Json(eventlog::read(&lab.state.events(), q.since.unwrap_or(0)))
}

/// An event the CLI reports (only kinds the CLI owns: a migration, a
/// verify/soak verdict), into the event log and the store like the daemon's own.
async fn post_event(
    State(lab): State<Arc<Lab>>,
    Json(event): Json<model::Event>,
) -> Result<&'static str, (StatusCode, String)> {
    if !matches!(
        event.kind,
        model::EventKind::Migration { .. } | model::EventKind::Verdict { .. }
    ) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "events of kind {:?} come from the daemon itself; the API takes only \"migration\" and \"verdict\" events",
                event.kind.name()
            ),
        ));
    }
    lab.events.send(event).await.map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the lab is stopping\n".to_string(),
        )
    })?;
    Ok("recorded\n")
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
    let unit = match (lab.node(&name), lab.service(&name)) {
        (Some(node), _) => Subject::Node(node.clone()),
        (None, Some(unit)) => Subject::Service(unit.clone()),
        (None, None) => {
            return Err((
                StatusCode::NOT_FOUND,
                format!(
                    "no node or service {name:?}; there are {}",
                    lab.unit_names().join(", ")
                ),
            ));
        }
    };
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
