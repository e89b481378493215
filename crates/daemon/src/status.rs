//! The lab's status, as `GET /api/status` serves it.

use api::{LinkReport, NodeStatus, Status};
use supervisor::UnitState;

use crate::faults;
use crate::up::Lab;

/// Builds the status now: unit states from the supervisor, link states and
/// lag measured live on the publishers and subscribers, and over both the
/// faults in force (a paused server reads `paused`, not `ready`).
pub(crate) async fn build(lab: &Lab) -> Status {
    let (phase, message) = lab.phase.borrow().clone();
    let active = lab.faults.list().await;
    let nodes = lab
        .nodes
        .iter()
        .map(|(spec, unit)| {
            let s = unit.status();
            NodeStatus {
                name: spec.name.clone(),
                kind: "postgres".into(),
                state: faults::node_state(&active, &spec.name)
                    .unwrap_or(s.state.as_str())
                    .into(),
                pid: s.pid,
                port: spec.port,
                proxy_port: lab.links.client_port(&spec.name),
                restarts: s.restarts,
                last_exit: s.last_exit.map(|e| e.to_string()),
                since_ns: s.since_ns,
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
            }
        })
        .collect();
    let mut replication = Vec::new();
    for repl in &lab.replications {
        let publisher = connect_if_ready(lab, &active, &repl.publisher).await;
        for sub_name in &repl.subscribers {
            let subscriber = connect_if_ready(lab, &active, sub_name).await;
            let (mut state, lag_bytes) = match &publisher {
                None => ("unknown".to_string(), None),
                Some(p) => link_status(p, subscriber.as_ref(), &repl.name, sub_name).await,
            };
            if faults::link_cut(&active, &repl.publisher, sub_name) {
                state = "cut".into();
            }
            replication.push(LinkReport {
                name: repl.name.clone(),
                publisher: repl.publisher.clone(),
                subscriber: sub_name.clone(),
                state,
                lag_bytes,
                fault: faults::link_fault(&active, &repl.publisher, sub_name),
            });
        }
    }
    Status {
        lab: lab.name.clone(),
        api: lab.api.clone(),
        phase,
        message,
        nodes,
        services,
        replication,
    }
}

/// Measures one link; "unknown" when its nodes do not answer in time (a
/// server that stops answering mid-query must not hang the status).
async fn link_status(
    publisher: &tokio_postgres::Client,
    subscriber: Option<&tokio_postgres::Client>,
    replication: &str,
    sub_name: &str,
) -> (String, Option<i64>) {
    let measured = pg::link_status(publisher, subscriber, replication, sub_name);
    match tokio::time::timeout(ANSWER_WITHIN, measured).await {
        Ok(Ok(link)) => (link.state, link.lag_bytes),
        _ => ("unknown".to_string(), None),
    }
}

const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// A connection to a node that can answer: ready, and not held by a
/// fault (a paused server accepts the TCP connection and then says nothing).
async fn connect_if_ready(
    lab: &Lab,
    active: &[api::ActiveFault],
    node: &str,
) -> Option<tokio_postgres::Client> {
    let (spec, unit) = lab.nodes.iter().find(|(s, _)| s.name == node)?;
    if unit.status().state != UnitState::Ready || faults::node_state(active, node).is_some() {
        return None;
    }
    tokio::time::timeout(ANSWER_WITHIN, pg::admin(spec))
        .await
        .ok()?
        .ok()
}
