//! hum's numbers before, during and after the migration, from a measuring
//! hum client of prodhome's own: one run per phase, so each phase's
//! percentiles are exact (HdrHistogram over exactly that window), not
//! averaged from the daemon's once-a-second points. The lab's own `[hum]`,
//! when it has one, keeps running beside it as the background load.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use hum::{HumOptions, Rate, Summary, Target, Workload};
use lab::HumWorkload;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::Context;

/// Sessions of the measuring client: light, so it measures rather than loads.
pub(crate) const CLIENTS: u32 = 2;

/// One phase's numbers.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Phase {
    pub(crate) tps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) transactions: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_sqlstate: BTreeMap<String, u64>,
}

impl From<Summary> for Phase {
    fn from(s: Summary) -> Phase {
        Phase {
            tps: s.tps,
            p50_ms: s.latency_ms.p50,
            p99_ms: s.latency_ms.p99,
            max_ms: s.latency_ms.max,
            transactions: s.transactions,
            errors: s.errors,
            errors_by_sqlstate: s.errors_by_sqlstate,
        }
    }
}

/// The measuring client's options, and why that workload.
pub(crate) struct Load {
    pub(crate) opts: HumOptions,
    pub(crate) why: String,
}

/// The lab's own hum workload when its `[hum]` drives `target`'s node (so
/// the measured transactions touch the user's hot tables); otherwise books,
/// whose table is created on the node and its subscribers when missing.
pub(crate) async fn prepare(ctx: &Context, target: Target, rate: f64) -> Result<Load> {
    let lab_hum = ctx.plan.hum.as_ref().filter(|h| h.node == target.name);
    let (workload, why) = match lab_hum {
        Some(h) => {
            let workload = match &h.workload {
                HumWorkload::Tpcb => Workload::Tpcb { scale: h.scale },
                HumWorkload::Books => Workload::Books,
                HumWorkload::Script { path, text } => Workload::Script {
                    path: path.clone(),
                    text: text.clone(),
                },
            };
            let why = format!(
                "the lab's [hum] workload ({}), which also keeps running",
                workload.name()
            );
            (workload, why)
        }
        None => {
            super::super::hum::init_shared(ctx, &target, &Workload::Books, false).await?;
            let why = format!("books (the lab has no [hum] on {})", target.name);
            (Workload::Books, why)
        }
    };
    let mut opts = HumOptions::new(target, workload);
    opts.clients = CLIENTS;
    opts.rate = Rate::PerSecond(rate);
    opts.seed = 11;
    Ok(Load { opts, why })
}

/// hum for `length`.
pub(crate) async fn window(load: &Load, length: Duration) -> Result<Phase> {
    let mut opts = load.opts.clone();
    opts.duration = Some(length);
    let (_stop, rx) = watch::channel(false);
    Ok(hum::run(opts, None, rx)
        .await
        .map_err(|e| anyhow!("measuring hum: {e}"))?
        .into())
}

/// hum until [`Running::finish`].
pub(crate) struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<Summary, hum::Error>>,
}

pub(crate) fn start(load: &Load) -> Running {
    let (stop, rx) = watch::channel(false);
    let opts = load.opts.clone();
    Running {
        stop,
        task: tokio::spawn(hum::run(opts, None, rx)),
    }
}

impl Running {
    pub(crate) async fn finish(self) -> Result<Phase> {
        let _ = self.stop.send(true);
        let summary = self
            .task
            .await
            .map_err(|e| anyhow!("measuring hum: {e}"))?
            .map_err(|e| anyhow!("measuring hum: {e}"))?;
        Ok(summary.into())
    }
}
