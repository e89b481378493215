//! What runs beside the nodes once the lab is ready: the store and its
//! sinks, the sampler, the lab's hum, and its `[[chaos]]` scenarios. Started
//! after replication is set up (the sampler's heartbeat and hum's tables
//! need it) and stopped before the nodes, so hum and the sampler do not
//! report a shutdown as an outage.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use lab::Plan;
use model::{Event, EventKind, Point};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::assemble;
use crate::faults;
use crate::layout::StateDir;
use crate::running::Lab;

/// Opens the store's sinks as `[sample]` says. The influx sink tags every
/// point with the lab's name, so labs can share a database.
pub(crate) fn start_store(plan: &Plan, state: &StateDir) -> Result<store::Store> {
    let sample = &plan.sample;
    let opts = store::StoreOptions {
        embedded: sample.embedded.then(|| store::EmbeddedOptions {
            path: state.metrics_db(),
            retention: sample.retention,
        }),
        influx: sample
            .influx
            .as_ref()
            .map(|i| assemble::influx_options(i, Some(&plan.name)))
            .transpose()
            .map_err(|assemble::MissingToken(var)| {
                anyhow!("[sample.influx] reads its token from ${var}, which is not set; export it and run `prodhome up` again")
            })?,
        prometheus: sample.prometheus,
    };
    store::start(opts).map_err(|e| anyhow!("starting the metrics store: {e}"))
}

/// The running background stages.
pub(crate) struct Background {
    stop: watch::Sender<bool>,
    hum: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

/// Starts the sampler, the hum and the chaos scenarios.
pub(crate) async fn start(plan: &Plan, lab: &Arc<Lab>, events: mpsc::Sender<Event>) -> Result<Background> {
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
            eprintln!("prodhome: the sampler stopped: {e}");
        }
    }));
    others.push(tokio::spawn(crate::replwatch::run(lab.clone(), events.clone())));
    let hum = match &plan.hum {
        Some(hum_plan) => Some(start_hum(plan, hum_plan, lab, events.clone(), stopped.clone()).await?),
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

fn sampler_options(plan: &Plan, lab: &Lab) -> sampler::SamplerOptions {
    let nodes = lab
        .nodes
        .iter()
        .map(|(spec, unit)| sampler::NodeTarget {
            name: spec.name.clone(),
            host: "127.0.0.1".into(),
            // The node itself, not its proxy: the sampler watches the
            // server, whatever a fault does to the paths in front of it.
            port: spec.port,
            user: pg::SUPERUSER.into(),
            password: spec.credentials.superuser.clone(),
            dbname: pg::DATABASE.into(),
            postmaster_pid: unit.status().pid,
        })
        .collect();
    let replications = plan
        .replications
        .iter()
        .map(|r| sampler::ReplicationTarget {
            name: r.name.clone(),
            publisher: r.publisher.clone(),
            subscribers: r.subscribers.clone(),
        })
        .collect();
    let custom = plan
        .sample
        .queries
        .iter()
        .map(|q| sampler::CustomQuery {
            name: q.name.clone(),
            nodes: q.nodes.clone(),
            sql: q.sql.clone(),
            tags: q.tags.clone(),
            fields: q.fields.clone(),
        })
        .collect();
    sampler::SamplerOptions {
        interval: plan.sample.interval,
        nodes,
        replications,
        custom,
        statement_timeout: Duration::from_millis(500)
            .max(plan.sample.interval / 2)
            .min(Duration::from_secs(5)),
    }
}

async fn start_hum(
    plan: &Plan,
    hum_plan: &lab::HumPlan,
    lab: &Arc<Lab>,
    events: mpsc::Sender<Event>,
    stopped: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let specs: Vec<pg::NodeSpec> = lab.nodes.iter().map(|(s, _)| s.clone()).collect();
    let port_of = |node: &pg::NodeSpec| lab.links.client_port(&node.name).unwrap_or(node.port);
    let opts = assemble::hum_options(hum_plan, &specs, port_of, lab.state.ledger())?;
    crate::humtables::init(plan, &lab.state, &specs, &opts.target, &opts.workload, false)
        .await
        .map_err(|e| anyhow!("preparing hum's tables on {}: {e:#}", hum_plan.node))?;
    // hum's points go to the store once a second; a full channel drops
    // (hum counts it) rather than slowing the load.
    let (points_tx, mut points_rx) = mpsc::channel::<Point>(256);
    let sink = lab.store.points();
    tokio::spawn(async move {
        while let Some(point) = points_rx.recv().await {
            sink.send(vec![point]);
        }
    });
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
        let phase = match hum::run(opts, Some(points_tx), stopped).await {
            Ok(summary) => format!("stopped after {} transactions", summary.transactions),
            Err(e) => format!("failed: {e}"),
        };
        let _ = events.send(Event::now(&unit, EventKind::Hum { phase })).await;
    }))
}

/// Feeds the alerts every event and, once a second, every unit's state and
/// (when lag alerts are on) every link's lag. Runs until aborted.
pub(crate) async fn run_alerts(
    alert: lab::AlertPlan,
    lab_name: String,
    lab_dir: std::path::PathBuf,
    lab: Arc<Lab>,
    mut tapped: mpsc::Receiver<Event>,
    events: mpsc::Sender<Event>,
) {
    let opts = crate::alerts::AlertOptions {
        command: alert.command,
        webhook: alert.webhook,
        down_after: alert.down_after,
        lag_bytes: alert.lag_bytes,
        min_interval: alert.min_interval,
        lab: lab_name,
        workdir: Some(lab_dir),
        ..Default::default()
    };
    let wants_lag = opts.lag_bytes.is_some();
    let mut alerts = crate::alerts::Alerts::new(opts, events);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some(event) = tapped.recv() => alerts.on_event(&event).await,
            _ = tick.tick() => {
                let units: Vec<(String, String, i64)> = lab
                    .units
                    .values()
                    .map(|u| {
                        let s = u.status();
                        (s.name.clone(), s.state.as_str().to_string(), s.since_ns)
                    })
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
