//! What a run tells while it runs: a Point every second for the sampler's
//! sinks and the dashboard, and a progress line on stderr every
//! `--progress`.
//!
//! Points: measurement `hum`, tags `node` and `workload`, fields (their
//! types never change) `tps`, `latency_p50_ms`, `latency_p99_ms`,
//! `latency_max_ms` (F64, over the last second; max counts transactions
//! still in flight) and `transactions`, `errors`, `reconnects` (I64,
//! cumulative). They are handed to a [`model::PointSender`], never waited
//! on: a point its queue has no room for is dropped, counted by the store
//! and in the run's `points_dropped`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use model::{Point, PointSender};
use tokio::time::{Interval, MissedTickBehavior};

use crate::stats::{Stats, Which, WindowReport};

pub(crate) struct Reporter {
    pub(crate) stats: Arc<Stats>,
    pub(crate) points: Option<PointSender>,
    pub(crate) progress: Option<Duration>,
    pub(crate) node: String,
    pub(crate) workload: String,
    pub(crate) dropped: Arc<AtomicU64>,
    pub(crate) start: Instant,
}

fn ticker(period: Duration) -> Interval {
    let mut t = tokio::time::interval_at((Instant::now() + period).into(), period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

async fn tick(t: &mut Option<Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Reporter {
    /// Runs until aborted.
    pub(crate) async fn run(self) {
        let mut every_second = self.points.as_ref().map(|_| ticker(Duration::from_secs(1)));
        let mut progress = self.progress.filter(|p| !p.is_zero()).map(ticker);
        if every_second.is_none() && progress.is_none() {
            return;
        }
        loop {
            tokio::select! {
                () = tick(&mut every_second) => self.point(self.stats.take(Which::Points)),
                () = tick(&mut progress) => self.line(self.stats.take(Which::Progress)),
            }
        }
    }

    fn point(&self, w: WindowReport) {
        let Some(tx) = &self.points else { return };
        let point = Point::new("hum", model::now_ns())
            .tag("node", &self.node)
            .tag("workload", &self.workload)
            .float("tps", w.tps)
            .float("latency_p50_ms", w.p50_ms)
            .float("latency_p99_ms", w.p99_ms)
            .float("latency_max_ms", w.max_ms)
            .int("transactions", w.transactions as i64)
            .int("errors", w.errors as i64)
            .int("reconnects", w.reconnects as i64);
        if let Err(full) = tx.try_send(vec![point]) {
            self.dropped.fetch_add(full.dropped as u64, Ordering::Relaxed);
        }
    }

    /// The `--progress` line of `prodhome hum`: output for the person
    /// watching the run (as pgbench's), not logging, so not `tracing`.
    fn line(&self, w: WindowReport) {
        eprintln!(
            "progress: {:.1} s, {:.1} tps, lat p50 {:.3} ms p99 {:.3} ms max {:.3} ms, {} errors, {} reconnects",
            self.start.elapsed().as_secs_f64(),
            w.tps,
            w.p50_ms,
            w.p99_ms,
            w.max_ms,
            w.errors,
            w.reconnects
        );
    }
}
