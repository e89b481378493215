//! The dashboard's HTTP routes: the page, its embedded assets, and the
//! JSON it (and any script) reads from the embedded store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use store::query::{Reader, Series};

use crate::catalogue::{PANELS, Panel};
use crate::frame::{Frame, Loader, auto_step, parse_duration, parse_since};
use crate::logview::{self, LogLine};

/// Most buckets a dashboard series may be split into, whatever step is
/// asked for: keeps one request's answer bounded.
const MAX_BUCKETS: u32 = 5000;

/// How many buckets a chart wants when the step is left to the server:
/// about one per two pixels of a panel at 1280 px wide.
const DEFAULT_BUCKETS: u32 = 360;

/// The span assumed for `since=all` when the store holds no event to date
/// the lab's start by.
const ALL_FALLBACK: Duration = Duration::from_secs(3600);

type Db = Arc<PathBuf>;
type Failure = (StatusCode, String);

/// The dashboard's routes over the embedded store at `db`.
pub fn router(db: PathBuf) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .route("/api/series", get(series))
        .route("/api/dashboard", get(dashboard))
        .route("/api/panels", get(panels))
        .route("/api/log", get(log))
        .with_state(Arc::new(db))
}

/// The page, with the panel catalogue inlined so the first paint needs no
/// extra request to know what to draw.
async fn page() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let catalogue = serde_json::to_string(PANELS).unwrap_or_else(|_| "[]".into());
        // `<` escaped so no string in it can close the script element.
        crate::assets::INDEX_HTML.replace("/*CATALOGUE*/", &catalogue.replace('<', "\\u003c"))
    });
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page.as_str(),
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match crate::assets::get(&name) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no asset {name}\n")).into_response(),
    }
}

async fn panels() -> Json<&'static [Panel]> {
    Json(PANELS)
}

#[derive(Deserialize)]
struct SeriesParams {
    measurement: Option<String>,
    node: Option<String>,
    field: Option<String>,
    since: Option<String>,
    step: Option<String>,
}

/// `GET /api/series?measurement=&node=&field=&since=&step=`: the stored
/// series as they are (`store::query::Series`), downsampled when `step` is
/// given.
async fn series(State(db): State<Db>, Query(p): Query<SeriesParams>) -> Result<Json<Vec<Series>>, Failure> {
    let measurement = p
        .measurement
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("measurement is required, e.g. /api/series?measurement=locks&since=5m"))?;
    let since_ns = parse_since(p.since.as_deref(), model::now_ns()).map_err(bad)?;
    let step = match p.step.as_deref() {
        None | Some("") => Duration::ZERO,
        Some(s) => parse_duration(s).map_err(|e| bad(format!("step: {e}")))?,
    };
    blocking(move || {
        let reader = open(&db)?;
        let mut found = reader
            .series(&measurement, p.node.as_deref(), since_ns, step)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        if let Some(field) = p.field.filter(|f| !f.is_empty()) {
            found.retain(|s| s.field == field);
        }
        Ok(Json(found))
    })
    .await
}

#[derive(Deserialize)]
struct DashboardParams {
    since: Option<String>,
    step: Option<String>,
    /// Comma-separated panel ids; every panel when absent.
    panels: Option<String>,
}

/// What `/api/dashboard` answers: every panel's [`Frame`] for one range.
#[derive(Serialize)]
struct Dashboard {
    now_ns: i64,
    /// Where the range starts: for `since=all`, the lab's first event; for
    /// a duration, no earlier than that either.
    since_ns: i64,
    /// The bucket width the frames are averaged over; poll again with it.
    step_ms: u64,
    panels: BTreeMap<&'static str, Frame>,
    /// Why there is no data, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `GET /api/dashboard?since=&step=&panels=`: all panels in one request,
/// for the page's first paint and its polls.
async fn dashboard(
    State(db): State<Db>,
    Query(p): Query<DashboardParams>,
) -> Result<Json<Dashboard>, Failure> {
    let now_ns = model::now_ns();
    let mut since_ns = parse_since(p.since.as_deref(), now_ns).map_err(bad)?;
    // `5m` rather than `all` or a time: the window a person asked for.
    let relative = p
        .since
        .as_deref()
        .is_none_or(|s| s.trim() != "all" && s.trim().parse::<i64>().is_err());
    let asked_step = match p.step.as_deref() {
        None | Some("" | "auto") => None,
        Some(s) => Some(parse_duration(s).map_err(|e| bad(format!("step: {e}")))?),
    };
    let wanted: Vec<&'static Panel> = match p.panels.as_deref() {
        None | Some("") => PANELS.iter().collect(),
        Some(list) => list
            .split(',')
            .map(|id| crate::catalogue::panel(id.trim()).ok_or_else(|| bad(format!("no panel {id}"))))
            .collect::<Result<_, _>>()?,
    };
    blocking(move || {
        let reader = match Reader::open(&db) {
            Ok(r) => r,
            Err(e) => {
                let step = asked_step.unwrap_or(Duration::from_secs(1));
                return Ok(Json(Dashboard {
                    now_ns,
                    since_ns,
                    step_ms: step.as_millis() as u64,
                    panels: BTreeMap::new(),
                    message: Some(e.to_string()),
                }));
            }
        };
        // A lab younger than the window is drawn from its start, not
        // squeezed into the window's last few pixels.
        let first = (since_ns == 0 || relative)
            .then(|| first_event_ns(&reader))
            .flatten();
        if since_ns == 0 {
            since_ns = first.unwrap_or(now_ns - ALL_FALLBACK.as_nanos() as i64);
        } else if let Some(first) = first {
            since_ns = since_ns.max(first);
        }
        let span = Duration::from_nanos(now_ns.saturating_sub(since_ns).max(0) as u64);
        let floor = auto_step(span, MAX_BUCKETS);
        let step = asked_step.map_or_else(|| auto_step(span, DEFAULT_BUCKETS), |s| s.max(floor));
        let mut loader = Loader::new(&reader, since_ns, step);
        let mut panels = BTreeMap::new();
        for panel in wanted {
            let frame = loader
                .frame(panel)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            panels.insert(panel.id, frame);
        }
        Ok(Json(Dashboard {
            now_ns,
            since_ns,
            step_ms: step.as_millis() as u64,
            panels,
            message: None,
        }))
    })
    .await
}

#[derive(Deserialize)]
struct LogParams {
    since: Option<String>,
    node: Option<String>,
    level: Option<String>,
    grep: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/log?since=&node=&level=&grep=&limit=`: the log view's lines
/// (see [`logview`]), newest first; empty parameters filter nothing.
async fn log(State(db): State<Db>, Query(p): Query<LogParams>) -> Result<Json<Vec<LogLine>>, Failure> {
    let since_ns = parse_since(p.since.as_deref(), model::now_ns()).map_err(bad)?;
    let some = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let filter = logview::Filter {
        node: some(p.node),
        level: some(p.level),
        grep: some(p.grep),
        limit: p.limit.unwrap_or(200),
    };
    blocking(move || {
        let events = open(&db)?
            .events(since_ns)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(Json(logview::lines(&events, &filter)))
    })
    .await
}

/// When the lab's history starts: its first event.
fn first_event_ns(reader: &Reader) -> Option<i64> {
    reader.events(0).ok()?.first().map(|e| e.ts_ns)
}

fn open(db: &std::path::Path) -> Result<Reader, Failure> {
    Reader::open(db).map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

fn bad(message: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, message.into())
}

/// SQLite reads block: run them off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the store failed: {e}"),
        ))
    })
}
