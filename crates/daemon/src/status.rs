//! The lab's status, as `GET /api/status` serves it.

use api::{LinkReport, NodeStatus, Status};
use supervisor::UnitState;

use crate::up::Lab;

/// Builds the status now: unit states from the supervisor, link states and
/// lag measured live on the publishers and subscribers.
pub(crate) async fn build(lab: &Lab) -> Status {
    let (phase, message) = lab.phase.borrow().clone();
    let nodes = lab
        .nodes
        .iter()
        .map(|(spec, unit)| {
            let s = unit.status();
            NodeStatus {
                name: spec.name.clone(),
                kind: "postgres".into(),
                state: s.state.as_str().into(),
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
        let publisher = connect_if_ready(lab, &repl.publisher).await;
        for sub_name in &repl.subscribers {
            let subscriber = connect_if_ready(lab, sub_name).await;
            let (state, lag_bytes) = match &publisher {
                None => ("unknown".to_string(), None),
                Some(p) => match pg::link_status(p, subscriber.as_ref(), &repl.name, sub_name).await {
                    Ok(link) => (link.state, link.lag_bytes),
                    Err(_) => ("unknown".to_string(), None),
                },
            };
            let error = link_error(lab, &repl.name, sub_name);
            let state = if error.is_some() { "error".into() } else { state };
            replication.push(LinkReport {
                name: repl.name.clone(),
                publisher: repl.publisher.clone(),
                subscriber: sub_name.clone(),
                state,
                lag_bytes,
                error,
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

async fn connect_if_ready(lab: &Lab, node: &str) -> Option<tokio_postgres::Client> {
    let (spec, unit) = lab.nodes.iter().find(|(s, _)| s.name == node)?;
    if unit.status().state != UnitState::Ready {
        return None;
    }
    tokio::time::timeout(std::time::Duration::from_secs(2), pg::admin(spec))
        .await
        .ok()?
        .ok()
}

/// What the replication watcher says of a link whose worker keeps failing.
fn link_error(lab: &Lab, replication: &str, subscriber: &str) -> Option<String> {
    let errors = lab.link_errors.lock().unwrap_or_else(|e| e.into_inner());
    errors
        .get(&(replication.to_string(), subscriber.to_string()))
        .cloned()
}
