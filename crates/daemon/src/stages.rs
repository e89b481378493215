//! What runs beside the nodes once the lab is ready: the store and its
//! sinks, the sampler, the lab's hum, and its `[[chaos]]` scenarios. Started
//! after replication is set up (the sampler's heartbeat and hum's tables
//! need it) and stopped before the nodes, so hum and the sampler do not
//! report a shutdown as an outage.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use lab::Plan;
use model::{Event, EventKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::assemble;
use crate::faults;
use crate::humtables::Carried;
use crate::layout::StateDir;
use crate::running::Lab;

/// Opens the store's sinks as `[sample]` says.
pub(crate) fn start_store(plan: &Plan, state: &StateDir) -> Result<store::Store> {
    let opts = assemble::store_options(plan, state).map_err(|e| anyhow!("{e}"))?;
    store::start(opts).map_err(|e| anyhow!("starting the metrics store: {e}"))
}

/// Counts every service's output lines by level (crates/pglog), from the
/// first line: made before the services' units, whose specs get the taps.
/// A `log_level` regex the pglog crate refuses (the lab checked it) leaves
/// that service uncounted, with a warning, rather than failing the lab.
pub(crate) fn service_log_taps(plan: &Plan, store: &store::Store) -> pglog::ServiceTaps {
    let services = plan
        .services
        .iter()
        .filter_map(|s| match pglog::LevelRule::new(s.log_level.as_deref()) {
            Ok(rule) => Some(pglog::ServiceLog {
                service: s.name.clone(),
                rule,
            }),
            Err(e) => {
                tracing::warn!("service {}: log_level not used: {e}", s.name);
                None
            }
        })
        .collect();
    pglog::count_services(services, plan.sample.interval, store.points())
}

/// The running background stages.
pub(crate) struct Background {
    stop: watch::Sender<bool>,
    hum: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

/// Starts the sampler, the hum and the chaos scenarios. `carried`: the
/// tables the lab's replications were just set up with (hum need not share
/// those).
pub(crate) async fn start(
    plan: &Plan,
    lab: &Arc<Lab>,
    events: mpsc::Sender<Event>,
    carried: &Carried,
) -> Result<Background> {
    let (stop, stopped) = watch::channel(false);
    let mut others = Vec::new();
    // A sink that cannot write says so: once as it starts, once as it ends.
    others.push(tokio::spawn(crate::status::watch_sinks(
        lab.store.clone(),
        lab.name.clone(),
        events.clone(),
    )));
    let sampler_opts = sampler_options(plan, lab);
    let points = lab.store.points();
    let sampler_events = events.clone();
    let sampler_stop = stopped.clone();
    others.push(tokio::spawn(async move {
        if let Err(e) = sampler::run(sampler_opts, points, sampler_events, sampler_stop).await {
            tracing::warn!("the sampler stopped: {e}");
        }
    }));
    // A container's CPU, memory, network and block I/O, from the engine.
    others.extend(
        lab.nodes
            .iter()
            .filter_map(|n| n.spawn_container_stats(&plan.name, plan.sample.interval, lab.store.points())),
    );
    others.push(tokio::spawn(crate::replwatch::run(lab.clone(), events.clone())));
    // The nodes' own logs, read into series and events (crates/pglog).
    let logs = lab
        .nodes
        .iter()
        .map(|n| (n.name().to_string(), pg::server_log_dir(&n.spec().data_dir)));
    others.push(tokio::spawn(pglog::run(
        log_reader_options(logs, plan, lab),
        lab.store.points(),
        events.clone(),
    )));
    let hum = match &plan.hum {
        Some(hum_plan) => {
            Some(start_hum(plan, hum_plan, lab, events.clone(), stopped.clone(), carried).await?)
        }
        None => None,
    };
    others.push(crate::ddlfollow::spawn(plan, lab, events.clone()));
    if !plan.chaos.is_empty() {
        others.push(tokio::spawn(faults::run_scenarios(
            lab.faults.clone(),
            plan.chaos.clone(),
            plan.seed,
        )));
    }
    Ok(Background { stop, hum, others })
}

impl Background {
    /// Stops hum first (its summary and ledger are flushed), then the rest.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(hum) = self.hum {
            let _ = tokio::time::timeout(Duration::from_secs(30), hum).await;
        }
        for task in self.others {
            task.abort();
        }
    }
}

/// The log reader goes on where the last daemon's stopped (its
/// checkpoints in the state directory), and saves a checkpoint only once
/// the store has written what it counted: a restart neither loses nor
/// repeats a line.
fn log_reader_options(
    logs: impl IntoIterator<Item = (String, std::path::PathBuf)>,
    plan: &Plan,
    lab: &Lab,
) -> pglog::Options {
    let mut opts = pglog::Options::new(logs, plan.sample.interval);
    opts.checkpoints = Some(lab.state.pglog_checkpoints());
    let (runtime, store) = (tokio::runtime::Handle::current(), lab.store.clone());
    opts.written = Some(pglog::Written(Arc::new(move || {
        // An InfluxDB that is down would hold a flush through its retries:
        // the embedded store writes in milliseconds, so a short bound.
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(2), store.flush()).await;
        });
    })));
    opts
}

fn sampler_options(plan: &Plan, lab: &Lab) -> sampler::SamplerOptions {
    let nodes: Vec<assemble::SampledNode<'_>> = lab
        .nodes
        .iter()
        .map(|node| assemble::SampledNode {
            spec: node.spec(),
            pid: node.host_pid(),
        })
        .collect();
    assemble::sampler_options(plan, &nodes)
}

async fn start_hum(
    plan: &Plan,
    hum_plan: &lab::HumPlan,
    lab: &Arc<Lab>,
    events: mpsc::Sender<Event>,
    stopped: watch::Receiver<bool>,
    carried: &Carried,
) -> Result<JoinHandle<()>> {
    let specs: Vec<pg::NodeSpec> = lab.nodes.iter().map(|n| n.spec().clone()).collect();
    let port_of = |node: &pg::NodeSpec| lab.links.client_port(&node.name).unwrap_or(node.port);
    let opts = assemble::hum_options(hum_plan, &specs, port_of, lab.state.ledger())?;
    crate::humtables::init(
        plan,
        &lab.state,
        &specs,
        &opts.target,
        &opts.workload,
        false,
        carried,
    )
    .await
    .map_err(|e| anyhow!("preparing hum's tables on {}: {e:#}", hum_plan.node))?;
    // hum hands its points to the store itself; a full queue drops (and
    // counts) rather than slowing the load.
    let points = lab.store.points();
    let unit = hum_plan.node.clone();
    let _ = events
        .send(Event::now(
            &unit,
            EventKind::Hum {
                phase: "started".into(),
            },
        ))
        .await;
    Ok(tokio::spawn(async move {
        let phase = match hum::run(opts, Some(points), stopped).await {
            Ok(summary) => format!("stopped after {} transactions", summary.transactions),
            Err(e) => format!("failed: {e}"),
        };
        let _ = events.send(Event::now(&unit, EventKind::Hum { phase })).await;
    }))
}

/// Feeds the alerts every event and, once a second, every unit's state and
/// (when lag alerts are on) every link's lag, read as the status reads it.
/// Runs until aborted.
pub(crate) async fn run_alerts(
    opts: crate::alerts::AlertOptions,
    lab: Arc<Lab>,
    mut tapped: mpsc::Receiver<Event>,
    events: mpsc::Sender<Event>,
) {
    let wants_lag = opts.lag_bytes.is_some();
    let mut alerts = crate::alerts::Alerts::new(opts, events);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some(event) = tapped.recv() => alerts.on_event(&event).await,
            _ = tick.tick() => {
                let units: Vec<(String, String, i64)> = lab
                    .unit_statuses()
                    .into_iter()
                    .map(|s| (s.name, s.state.as_str().to_string(), s.since_ns))
                    .collect();
                let lags = if wants_lag {
                    crate::status::build(&lab)
                        .await
                        .replication
                        .into_iter()
                        .map(|l| (l.name, l.subscriber, l.lag_bytes))
                        .collect()
                } else {
                    Vec::new()
                };
                alerts.on_tick(model::now_ns(), &units, &lags).await;
            }
        }
    }
}
