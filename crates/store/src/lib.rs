//! Where sampled points and events go: a fan-out to sinks, each behind its
//! own bounded queue, and the queries that read the embedded store back.
//!
//! Producers (the sampler, hum) hold the [`model::PointSender`] that
//! [`Store::points`] gives out and hand over [`model::Point`]s; the
//! daemon's event log hands [`model::Event`]s to the [`Store`] itself.
//! Handing over never waits: each sink has a queue bounded in points, and
//! a batch that does not fit is dropped from that sink's queue, counted
//! ([`Store::stats`], and the `store` measurement below) and answered with
//! [`model::Full`], so a slow disk or a dead InfluxDB never stalls
//! sampling. The sinks:
//!
//! - **embedded** ([`EmbeddedOptions`]): a SQLite file in WAL mode
//!   (`<state dir>/metrics.db`) holding each tag set's points in encoded
//!   chunks (one row per write, merged per minute), batched, with
//!   retention by age; read back with [`query`] (range queries with
//!   downsampling) by the dashboard and `prodhome metrics`.
//! - **influx** ([`InfluxOptions`]): InfluxDB line protocol over HTTP, v1
//!   (`/write?db=`) or v2 (`/api/v2/write?org=&bucket=`, token auth), gzip,
//!   batched, retried with backoff; every line tagged `lab`; a missing v1
//!   database is created. Events become points of measurement `events`
//!   (tags `unit`, `kind`; field `text`). [`check_influx`] is the doctor's
//!   look at the server before a lab starts.
//! - **prometheus**: the latest value of every numeric field, named, typed
//!   and explained as Prometheus's conventions ask ([`prometheus_series`]),
//!   rendered by [`Store::prometheus_text`] in the text exposition format
//!   for the daemon to serve at `/metrics`.
//!
//! A sink is **failing** from the first batch it gives up on until it
//! writes one again ([`SinkStats::state`], with the error it got in
//! [`SinkStats::last_error`]); [`Store::sink_changes`] wakes whoever
//! watches (the daemon turns each change into an event), and the counts of
//! failures and recoveries let a watcher that looks late still see both.
//!
//! Every [`STATS_EVERY`] the store also reports on itself, as points of
//! measurement `store` (tag `sink`; fields `written`, `dropped`, `failed`,
//! `queued`, all integers counted since start) sent to its own sinks: a
//! drop is a metric, never silent.
//!
//! [`start`] must be called inside a tokio runtime: the sinks are tasks
//! (and one thread for SQLite). They end when the last [`Store`] and
//! [`model::PointSender`] are dropped, after writing what they hold;
//! [`Store::flush`] waits for that explicitly.

mod codec;
mod error;
mod fxhash;
mod lane;
mod line_protocol;
pub mod query;
mod sinks;

pub use error::Error;
pub use sinks::embedded::{EmbeddedOptions, Writer as EmbeddedWriter};
pub use sinks::influx::{InfluxApi, InfluxOptions};
pub use sinks::influx_admin::{InfluxCheck, check_influx};
pub use sinks::prometheus::STALE_AFTER as PROMETHEUS_STALE_AFTER;
pub use sinks::prometheus::names::{Series as PrometheusSeries, series as prometheus_series};

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use model::{Event, Full, Point, PointSender};
use serde::Serialize;
use tokio::sync::watch;

use lane::{Lane, Msg};

/// Which sinks to run.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub embedded: Option<EmbeddedOptions>,
    pub influx: Option<InfluxOptions>,
    /// Keep the latest values for [`Store::prometheus_text`].
    pub prometheus: bool,
}

/// Queue sizes, in points, for the sinks whose size is not configurable:
/// enough for minutes of a lab's samples if the disk stalls.
const EMBEDDED_BUFFER: usize = 100_000;
const PROMETHEUS_BUFFER: usize = 50_000;

/// How often the store reports on itself (measurement `store`).
pub const STATS_EVERY: Duration = Duration::from_secs(10);

/// The running store. Cheap to clone; every clone feeds the same sinks.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// The store's side of the producers' [`model::PointSender`]: never
/// blocks; what a full sink cannot take is dropped and counted in that
/// sink's [`SinkStats::dropped`].
struct Handover {
    shared: Arc<Shared>,
}

struct Shared {
    lanes: Vec<Lane>,
    prometheus: Option<sinks::prometheus::Shared>,
    changed: Arc<watch::Sender<u64>>,
}

/// How each sink is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub sinks: Vec<SinkStats>,
}

/// One sink's counters since start. Points and events are counted alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// "embedded", "influx" or "prometheus".
    pub sink: String,
    /// Written (or, for prometheus, taken into the exposition).
    pub written: u64,
    /// Dropped because the sink's queue was full.
    pub dropped: u64,
    /// Given up on after the sink failed to write them.
    pub failed: u64,
    /// Waiting in the queue (or being written) now.
    pub queued: u64,
    /// The latest write error, if any (kept once the sink recovers).
    pub last_error: Option<String>,
    /// Failing from the first batch given up on until one is written.
    pub state: SinkState,
    /// How many times the sink started failing since start.
    pub failures: u64,
    /// How many times it wrote again after failing.
    pub recoveries: u64,
}

/// Whether a sink writes what it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkState {
    Ok,
    /// Its latest batch could not be written and was given up on.
    Failing,
}

impl SinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkState::Ok => "ok",
            SinkState::Failing => "failing",
        }
    }
}

impl StoreStats {
    /// One sink's stats by name.
    pub fn sink(&self, name: &str) -> Option<&SinkStats> {
        self.sinks.iter().find(|s| s.sink == name)
    }
}

/// Opens the sinks and starts their tasks. Fails when the embedded store
/// cannot be opened or the InfluxDB URL is not valid; a server that is
/// down is not an error here (its writes fail, are retried, and count).
pub fn start(opts: StoreOptions) -> Result<Store, Error> {
    let mut lanes = Vec::new();
    let changed = Arc::new(watch::channel(0).0);
    if let Some(embedded) = &opts.embedded {
        let writer = sinks::embedded::Writer::open(embedded)?;
        let (lane, inbox) = Lane::new("embedded", EMBEDDED_BUFFER, true, changed.clone());
        std::thread::Builder::new()
            .name("store-embedded".into())
            .spawn(move || sinks::embedded::run(writer, inbox))
            .map_err(|e| Error::with("starting the embedded store's writer thread", e))?;
        lanes.push(lane);
    }
    if let Some(influx) = &opts.influx {
        let target = sinks::influx::Target::new(influx)?;
        let (lane, inbox) = Lane::new("influx", influx.buffer, true, changed.clone());
        tokio::spawn(sinks::influx::run(target, inbox, influx.batch));
        lanes.push(lane);
    }
    let mut prometheus = None;
    if opts.prometheus {
        let latest: sinks::prometheus::Shared = Arc::default();
        let (lane, inbox) = Lane::new("prometheus", PROMETHEUS_BUFFER, false, changed.clone());
        tokio::spawn(sinks::prometheus::run(latest.clone(), inbox));
        prometheus = Some(latest);
        lanes.push(lane);
    }
    let shared = Arc::new(Shared {
        lanes,
        prometheus,
        changed,
    });
    tokio::spawn(report_stats(Arc::downgrade(&shared)));
    Ok(Store { shared })
}

impl Store {
    /// A handle for producers (see [`model::PointSink`] for what happens
    /// when a queue is full). It keeps the sinks running, as a `Store` does.
    pub fn points(&self) -> PointSender {
        PointSender::new(Handover {
            shared: self.shared.clone(),
        })
    }

    /// Records an event in every sink that keeps events (embedded, influx).
    pub fn event(&self, event: Event) {
        let event = Arc::new(event);
        for lane in self.shared.lanes.iter().filter(|l| l.events) {
            lane.offer(Msg::Event(event.clone()), 1);
        }
    }

    /// The `/metrics` text, or `None` when the prometheus sink is off.
    pub fn prometheus_text(&self) -> Option<String> {
        let latest = self.shared.prometheus.as_ref()?;
        Some(
            latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .render(Instant::now()),
        )
    }

    /// Every sink's counters.
    pub fn stats(&self) -> StoreStats {
        stats(&self.shared)
    }

    /// Changes whenever a sink starts failing or writes again; read
    /// [`Store::stats`] then. A watch rather than a queue of changes: the
    /// stats' `failures` and `recoveries` counts say what happened in
    /// between, so nothing is lost however late the reader looks, and a
    /// sink flapping fast cannot fill anything up.
    pub fn sink_changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Waits until every sink wrote what it was handed before this call
    /// (for InfluxDB: sent it, retries included, so with InfluxDB down this
    /// takes a few seconds per batch held: bound it with a timeout on
    /// shutdown).
    pub async fn flush(&self) {
        let waits: Vec<_> = self.shared.lanes.iter().map(|l| l.flush()).collect();
        for wait in waits {
            let _ = wait.await;
        }
    }
}

impl model::PointSink for Handover {
    /// Offers the batch to every sink; never waits. [`Full`] when at least
    /// one sink had no room (the others still took it).
    fn try_send(&self, points: Vec<Point>) -> Result<(), Full> {
        offer_points(&self.shared, points)
    }
}

fn offer_points(shared: &Shared, points: Vec<Point>) -> Result<(), Full> {
    if points.is_empty() {
        return Ok(());
    }
    let n = points.len();
    let batch: Arc<[Point]> = points.into();
    let mut all = true;
    for lane in &shared.lanes {
        all &= lane.offer(Msg::Points(batch.clone()), n);
    }
    if all { Ok(()) } else { Err(Full { dropped: n }) }
}

fn stats(shared: &Shared) -> StoreStats {
    let sinks = shared
        .lanes
        .iter()
        .map(|lane| {
            let c = &lane.counters;
            let health = c.health();
            SinkStats {
                sink: lane.name.to_string(),
                written: c.written.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                queued: lane.queued() as u64,
                last_error: health.last_error,
                state: if health.failing {
                    SinkState::Failing
                } else {
                    SinkState::Ok
                },
                failures: health.failures,
                recoveries: health.recoveries,
            }
        })
        .collect();
    StoreStats { sinks }
}

/// Sends the store's own counters to its sinks every [`STATS_EVERY`],
/// until the store is dropped.
async fn report_stats(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(STATS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let ts = model::now_ns();
        let points = stats(&shared)
            .sinks
            .into_iter()
            .map(|s| {
                Point::new("store", ts)
                    .tag("sink", s.sink)
                    .int("written", s.written as i64)
                    .int("dropped", s.dropped as i64)
                    .int("failed", s.failed as i64)
                    .int("queued", s.queued as i64)
            })
            .collect();
        // A drop here is counted like any other (and shows in the next report).
        let _ = offer_points(&shared, points);
    }
}
