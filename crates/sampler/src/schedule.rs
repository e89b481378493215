//! The sampling loop: one task per node, each on its own tick, so a node
//! that is slow, paused or down delays nobody else. A cycle that overruns
//! skips the ticks it missed (counted in `sampler.skipped_ticks`) instead
//! of running them late, back to back.

use std::time::Duration;

use model::{Event, PointSender};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::cycle::Sampler;
use crate::node::NodeSampler;
use crate::options::{Error, SamplerOptions};

/// Samples every node every `opts.interval` until `stop` turns true (or its
/// sender is dropped). Points go to `points` and events to `events`, both
/// without waiting: a full event channel drops the event. Fails only on
/// options that cannot work.
pub async fn run(
    opts: SamplerOptions,
    points: PointSender,
    events: mpsc::Sender<Event>,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let interval = opts.interval;
    let sampler = Sampler::new(opts)?;
    let mut tasks = tokio::task::JoinSet::new();
    for node in sampler.nodes {
        tasks.spawn(node_loop(
            node,
            interval,
            points.clone(),
            events.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn node_loop(
    mut node: NodeSampler,
    interval: Duration,
    points: PointSender,
    events: mpsc::Sender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        }
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let cycle = tokio::select! {
            cycle = node.sample(model::now_ns()) => cycle,
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        };
        points.send(cycle.points);
        for event in node.take_events() {
            let _ = events.try_send(event);
        }
        // Ticks that passed while this cycle ran are skipped, not queued.
        let overran = started.elapsed().max(cycle.duration);
        if overran > interval {
            node.skipped += (overran.as_nanos() / interval.as_nanos().max(1)) as u64;
        }
    }
}
