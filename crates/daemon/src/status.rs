//! The lab's status, as `GET /api/status` serves it, and the watch that
//! turns a sink's change of state into an event.

use std::collections::BTreeMap;

use api::{LinkReport, NodeStatus, SinkStatus, Status};
use model::{Event, EventKind};
use store::{SinkState, SinkStats};
use supervisor::UnitState;
use tokio::sync::mpsc;

use crate::faults;
use crate::running::Lab;

/// Builds the status now: unit states from the supervisor, link states and
/// lag measured live on the publishers and subscribers, and over both the
/// faults in force (a paused server reads `paused`, not `ready`).
pub(crate) async fn build(lab: &Lab) -> Status {
    let (phase, message) = lab.phase.borrow().clone();
    let active = lab.faults.list().await;
    let nodes = lab
        .nodes
        .iter()
        .map(|node| {
            let s = node.status();
            NodeStatus {
                name: node.name().to_string(),
                kind: "postgres".into(),
                state: faults::node_state(&active, node.name())
                    .unwrap_or(s.state.as_str())
                    .into(),
                pid: s.pid,
                port: node.spec().port,
                proxy_port: lab.links.client_port(node.name()),
                restarts: s.restarts,
                last_exit: s.last_exit.map(|e| e.to_string()),
                since_ns: s.since_ns,
                container: node.container().map(str::to_owned),
            }
        })
        .collect();
    let services = lab
        .services
        .iter()
        .map(|unit| {
            let s = unit.status();
            api::ServiceStatus {
                name: s.name.clone(),
                kind: "service".into(),
                state: s.state.as_str().into(),
                pid: s.pid,
                restarts: s.restarts,
                last_exit: s.last_exit.map(|e| e.to_string()),
                since_ns: s.since_ns,
                // A probe's old complaint means nothing once the unit is ready.
                last_probe_error: s.last_probe_error.clone().filter(|_| s.state != UnitState::Ready),
                container: unit.container().map(str::to_owned),
            }
        })
        .collect();
    let replication = links(lab, &active).await;
    Status {
        lab: lab.name.clone(),
        api: lab.api.clone(),
        phase,
        message,
        nodes,
        services,
        replication,
        sinks: sinks(&lab.store),
    }
}

/// Every replication link's row: state and lag measured live over the
/// status's kept connections, then what the faults and the replication
/// watcher say of it.
async fn links(lab: &Lab, active: &[api::ActiveFault]) -> Vec<LinkReport> {
    let mut clients = BTreeMap::new();
    for repl in &lab.replications {
        for name in std::iter::once(&repl.publisher).chain(&repl.subscribers) {
            if !clients.contains_key(name) {
                clients.insert(name.clone(), take_admin(lab, active, name).await);
            }
        }
    }
    let mut broken = std::collections::BTreeSet::new();
    let mut replication = Vec::new();
    for repl in &lab.replications {
        for sub_name in &repl.subscribers {
            let (mut state, lag_bytes) = match clients[&repl.publisher].as_ref() {
                None => ("unknown".to_string(), None),
                Some(p) => {
                    let subscriber = clients[sub_name].as_ref();
                    link_status(p, subscriber, &repl.name, sub_name)
                        .await
                        .unwrap_or_else(|| {
                            // Stalled or broken: new connections next time
                            // (this build's other links still try these).
                            broken.insert(repl.publisher.clone());
                            broken.insert(sub_name.clone());
                            ("unknown".to_string(), None)
                        })
                }
            };
            if faults::link_cut(active, &repl.publisher, sub_name) {
                state = "cut".into();
            }
            let error = link_error(lab, &repl.name, sub_name);
            if error.is_some() {
                state = "error".into();
            }
            replication.push(LinkReport {
                name: repl.name.clone(),
                publisher: repl.publisher.clone(),
                subscriber: sub_name.clone(),
                state,
                lag_bytes,
                error,
                fault: faults::link_fault(active, &repl.publisher, sub_name),
            });
        }
    }
    for (name, client) in clients {
        if !broken.contains(&name) {
            give_back(lab, &name, client).await;
        }
    }
    replication
}

fn sinks(store: &store::Store) -> Vec<SinkStatus> {
    store
        .stats()
        .sinks
        .into_iter()
        .map(|s| SinkStatus {
            name: s.sink,
            state: s.state.as_str().into(),
            written: s.written,
            failed: s.failed,
            dropped: s.dropped,
            queued: s.queued,
            last_error: s.last_error,
        })
        .collect()
}

/// Raises `SinkFailed` when a sink starts failing and `SinkRecovered` when
/// it writes again, as unit `lab`. Woken by the store's watch rather than
/// polling its stats: a change is seen at once, and the stats' failure and
/// recovery counts make up for changes that came between two looks. Runs
/// until aborted or the store is gone.
pub(crate) async fn watch_sinks(store: store::Store, lab: String, events: mpsc::Sender<Event>) {
    let mut changes = store.sink_changes();
    let mut seen = BTreeMap::new();
    loop {
        for stats in store.stats().sinks {
            let before = seen
                .insert(stats.sink.clone(), Seen::of(&stats))
                .unwrap_or_default();
            for kind in sink_events(&before, &stats) {
                if events.send(Event::now(&lab, kind)).await.is_err() {
                    return;
                }
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// What the watcher last saw of a sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    failures: u64,
    recoveries: u64,
}

impl Seen {
    fn of(s: &SinkStats) -> Seen {
        Seen {
            failures: s.failures,
            recoveries: s.recoveries,
        }
    }
}

/// The events a sink's change from `before` to `now` calls for: at most
/// one of each kind, in the order they happened (a sink that recovered
/// and failed again between two looks gives both).
fn sink_events(before: &Seen, now: &SinkStats) -> Vec<EventKind> {
    let failed = EventKind::SinkFailed {
        sink: now.sink.clone(),
        error: now
            .last_error
            .clone()
            .unwrap_or_else(|| "no error recorded".into()),
    };
    let recovered = EventKind::SinkRecovered {
        sink: now.sink.clone(),
    };
    let new_failure = now.failures > before.failures;
    let new_recovery = now.recoveries > before.recoveries;
    match (now.state, new_failure, new_recovery) {
        (SinkState::Failing, true, true) => vec![recovered, failed],
        (SinkState::Failing, true, false) => vec![failed],
        (SinkState::Ok, true, _) => vec![failed, recovered],
        (SinkState::Ok, false, true) => vec![recovered],
        _ => Vec::new(),
    }
}

/// Measures one link; `None` when its nodes do not answer in time (a
/// server that stops answering mid-query must not hang the status).
async fn link_status(
    publisher: &tokio_postgres::Client,
    subscriber: Option<&tokio_postgres::Client>,
    replication: &str,
    sub_name: &str,
) -> Option<(String, Option<i64>)> {
    let measured = pg::link_status(publisher, subscriber, replication, sub_name);
    match tokio::time::timeout(ANSWER_WITHIN, measured).await {
        Ok(Ok(link)) => Some((link.state, link.lag_bytes)),
        _ => None,
    }
}

const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The kept admin connection to a node that can answer (ready, and not
/// held by a fault: a paused server accepts the TCP connection and then
/// says nothing), taken out of its slot for this build, or a new one.
/// Taken rather than locked, so two builds at once never wait on each
/// other: the second opens its own, and [`give_back`] keeps one.
async fn take_admin(lab: &Lab, active: &[api::ActiveFault], node: &str) -> Option<tokio_postgres::Client> {
    let n = lab.node(node)?;
    if n.status().state != UnitState::Ready || faults::node_state(active, node).is_some() {
        return None;
    }
    let kept = lab.admin.get(node)?.lock().await.take();
    if let Some(client) = kept.filter(|c| !c.is_closed()) {
        return Some(client);
    }
    tokio::time::timeout(ANSWER_WITHIN, pg::admin(n.spec()))
        .await
        .ok()?
        .ok()
}

/// Puts a connection back in its node's slot for the next build (`up`
/// hands over the admin sessions it set the lab up with, so that the
/// status it is waited on with opens none).
pub(crate) async fn give_back(lab: &Lab, node: &str, client: Option<tokio_postgres::Client>) {
    let (Some(slot), Some(client)) = (lab.admin.get(node), client) else {
        return;
    };
    let mut slot = slot.lock().await;
    if slot.is_none() {
        *slot = Some(client);
    }
}

/// What the replication watcher or the DDL follower says of a link.
fn link_error(lab: &Lab, replication: &str, subscriber: &str) -> Option<String> {
    lab.link_errors.shown(replication, subscriber)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(state: SinkState, failures: u64, recoveries: u64) -> SinkStats {
        SinkStats {
            sink: "influx".into(),
            written: 0,
            dropped: 0,
            failed: 3,
            queued: 0,
            last_error: Some("database not found".into()),
            state,
            failures,
            recoveries,
        }
    }

    #[test]
    fn each_change_of_a_sink_is_one_event_even_when_looked_at_late() {
        use SinkState::{Failing, Ok};
        let names = |kinds: Vec<EventKind>| kinds.iter().map(|k| k.name()).collect::<Vec<_>>();
        let fresh = Seen::default();
        let failing = Seen {
            failures: 1,
            recoveries: 0,
        };
        let cases = [
            (fresh, stats(Ok, 0, 0), vec![]),
            (fresh, stats(Failing, 1, 0), vec!["sink_failed"]),
            (failing, stats(Failing, 1, 0), vec![]),
            (failing, stats(Ok, 1, 1), vec!["sink_recovered"]),
            (fresh, stats(Ok, 1, 1), vec!["sink_failed", "sink_recovered"]),
            (
                failing,
                stats(Failing, 2, 1),
                vec!["sink_recovered", "sink_failed"],
            ),
        ];
        for (before, now, want) in cases {
            assert_eq!(names(sink_events(&before, &now)), want, "{before:?} -> {now:?}");
        }
        let kinds = sink_events(&fresh, &stats(Failing, 1, 0));
        let event = Event::now("shop", kinds[0].clone());
        assert_eq!(event.to_string(), "shop: sink influx failing: database not found");
    }
}
