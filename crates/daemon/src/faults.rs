//! Applying faults now, undoing them later: node faults through the node
//! backend (`backend::Node`; a service's through `service::Service`:
//! its supervisor handle, or the engine for one in a container), link
//! faults through the proxy links (in this process, or in a Docker lab's
//! link proxy container: `links::LinkHandle`). Every
//! start and end is an Event. Whatever ends the daemon (heal, down, Ctrl-C)
//! heals everything first, so no server stays paused and no link stays cut;
//! a daemon killed -9 takes its links with it, and the next `up` resumes any
//! server a fault left stopped before shutting it down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::ActiveFault;
use chaos::{Fault, FaultKind, Target};
use model::{Event, EventKind, now_ns};
use tokio::sync::{Mutex, mpsc};

use crate::backend::{Node, NodeSignal, NotRunning};
use crate::links::{LinkHandle, Links, clients_link, replication_link};
use crate::service::Service;

/// What a node fault acts on: a node, or (as `kill`, `pause`, `stop` and
/// `restart` allow) an app service.
#[derive(Clone)]
pub(crate) enum Subject {
    Node(Node),
    Service(Service),
}

impl Subject {
    fn signal(&self, signal: NodeSignal) -> Result<(), NotRunning> {
        match self {
            Subject::Node(node) => node.signal(signal),
            Subject::Service(service) => service.signal(signal),
        }
    }

    pub(crate) async fn start(&self) {
        match self {
            Subject::Node(node) => node.start().await,
            Subject::Service(unit) => unit.start().await,
        }
    }

    pub(crate) async fn stop(&self) {
        match self {
            Subject::Node(node) => node.stop().await,
            Subject::Service(unit) => unit.stop().await,
        }
    }

    pub(crate) async fn restart(&self) {
        match self {
            Subject::Node(node) => node.restart().await,
            Subject::Service(unit) => unit.restart().await,
        }
    }
}

/// The daemon's fault controller.
pub(crate) struct Faults {
    units: BTreeMap<String, Subject>,
    links: Links,
    events: mpsc::Sender<Event>,
    active: Mutex<Vec<Active>>,
    next_id: AtomicU64,
}

struct Active {
    id: u64,
    fault: Fault,
    started_ns: i64,
    ends_ns: Option<i64>,
    undo: Undo,
    timer: Option<tokio::task::JoinHandle<()>>,
}

/// How to take a fault back.
enum Undo {
    Resume {
        unit: Subject,
    },
    Start {
        unit: Subject,
    },
    Rejoin {
        node: Node,
    },
    ClearLink {
        link: LinkHandle,
        kind: proxy::FaultKind,
    },
}

impl Faults {
    pub(crate) fn new(
        units: BTreeMap<String, Subject>,
        links: Links,
        events: mpsc::Sender<Event>,
    ) -> Arc<Faults> {
        let restarts = links.proxy_restarts();
        let faults = Arc::new(Faults {
            units,
            links,
            events,
            active: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        if let Some(restarts) = restarts {
            tokio::spawn(reapply(Arc::downgrade(&faults), restarts));
        }
        faults
    }

    /// Applies `fault` now; if it has a duration, it is undone after it.
    pub(crate) async fn apply(self: &Arc<Self>, fault: Fault) -> Result<ActiveFault, String> {
        let undo = self.act(&fault).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let started_ns = now_ns();
        self.emit(&fault, "on").await;
        let Some(undo) = undo else {
            // Instant: over as soon as done.
            return Ok(ActiveFault {
                id,
                fault,
                started_ns,
                ends_ns: Some(started_ns),
            });
        };
        let ends_ns = fault.duration.map(|d| started_ns + d.as_nanos() as i64);
        let timer = fault.duration.map(|d| {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                me.end(id).await;
            })
        });
        let report = ActiveFault {
            id,
            fault: fault.clone(),
            started_ns,
            ends_ns,
        };
        self.active.lock().await.push(Active {
            id,
            fault,
            started_ns,
            ends_ns,
            undo,
            timer,
        });
        Ok(report)
    }

    /// Undoes fault `id`; false when it is not active.
    pub(crate) async fn end(&self, id: u64) -> bool {
        let found = {
            let mut active = self.active.lock().await;
            active.iter().position(|a| a.id == id).map(|i| active.remove(i))
        };
        match found {
            Some(active) => {
                self.undo(active).await;
                true
            }
            None => false,
        }
    }

    /// Undoes every active fault and clears every link.
    pub(crate) async fn heal_all(&self) {
        let all: Vec<Active> = std::mem::take(&mut *self.active.lock().await);
        for active in all {
            self.undo(active).await;
        }
        self.links.heal_all().await;
    }

    pub(crate) async fn list(&self) -> Vec<ActiveFault> {
        let active = self.active.lock().await;
        active
            .iter()
            .map(|a| ActiveFault {
                id: a.id,
                fault: a.fault.clone(),
                started_ns: a.started_ns,
                ends_ns: a.ends_ns,
            })
            .collect()
    }

    async fn undo(&self, active: Active) {
        if let Some(timer) = &active.timer {
            timer.abort();
        }
        match active.undo {
            Undo::Resume { unit } => {
                let _ = unit.signal(NodeSignal::Resume);
            }
            Undo::Start { unit } => unit.start().await,
            Undo::Rejoin { node } => {
                let _ = node.rejoin().await;
            }
            // A link proxy that does not answer carries no fault any more.
            Undo::ClearLink { link, kind } => {
                let _ = link.clear(kind).await;
            }
        }
        self.emit(&active.fault, "off").await;
    }

    /// Does the fault; returns how to undo it (`None` for instant faults).
    async fn act(&self, fault: &Fault) -> Result<Option<Undo>, String> {
        if fault.kind.on_node() {
            return self.act_on_node(fault).await;
        }
        if let Some(node) = self.network_cut(fault) {
            node.isolate().await?;
            return Ok(Some(Undo::Rejoin { node }));
        }
        self.act_on_link(fault).await
    }

    /// A partition whose target is a node itself (not its client path: the
    /// API's `{"type": "node"}`), of a node with a network of its own to be
    /// cut from: a container, cut off the lab network through the engine.
    fn network_cut(&self, fault: &Fault) -> Option<Node> {
        let Target::Node { node } = &fault.target else {
            return None;
        };
        match self.units.get(node) {
            Some(Subject::Node(n)) if fault.kind == FaultKind::Partition && n.container().is_some() => {
                Some(n.clone())
            }
            _ => None,
        }
    }

    /// Kill, pause, stop or restart a node or service.
    async fn act_on_node(&self, fault: &Fault) -> Result<Option<Undo>, String> {
        let Target::Node { node } = &fault.target else {
            return Err(format!(
                "{} acts on a node; {} is a link",
                fault.kind, fault.target
            ));
        };
        let unit = self.units.get(node).ok_or_else(|| self.no_such(&fault.target))?;
        if let Subject::Node(n) = unit
            && !n.is_managed()
        {
            return Err(format!(
                "{node} runs under its engine (compose, Swarm or Kubernetes), which prodhome's controller does not \
                 drive: {} it with the engine's own command, or fault its links (clients:{node} or PUBLISHER:{node})",
                fault.kind
            ));
        }
        let not_running = |_| format!("{node} is not running");
        match fault.kind {
            FaultKind::Kill => {
                unit.signal(NodeSignal::Kill).map_err(not_running)?;
                Ok(None)
            }
            FaultKind::Pause => {
                unit.signal(NodeSignal::Pause).map_err(not_running)?;
                Ok(Some(Undo::Resume { unit: unit.clone() }))
            }
            FaultKind::Stop => {
                unit.stop().await;
                Ok(Some(Undo::Start { unit: unit.clone() }))
            }
            _ => {
                unit.restart().await;
                Ok(None)
            }
        }
    }

    /// A fault on a proxy link: a replication link or a client path.
    async fn act_on_link(&self, fault: &Fault) -> Result<Option<Undo>, String> {
        let name = match &fault.target {
            Target::Node { node } | Target::Clients { node } => clients_link(node),
            Target::Link {
                publisher,
                subscriber,
            } => replication_link(publisher, subscriber),
        };
        let link = self
            .links
            .get(&name)
            .ok_or_else(|| self.no_such(&fault.target))?
            .clone();
        let (applied, kind) = proxy_fault(fault);
        link.apply(applied).await?;
        Ok((!fault.kind.instant()).then_some(Undo::ClearLink { link, kind }))
    }

    fn no_such(&self, target: &Target) -> String {
        let mut known: Vec<String> = self.units.keys().cloned().collect();
        known.extend(self.links.by_name.keys().cloned());
        format!("no target {target}; targets are {}", known.join(", "))
    }

    /// Applies every link fault in force on a link of the link proxy
    /// container again, each with a `reapplied` event: the proxy was
    /// started again, and a new process carries no fault.
    async fn reapply_remote(&self) {
        let active = self.active.lock().await;
        for a in active.iter() {
            if let Undo::ClearLink {
                link: link @ LinkHandle::Remote(_),
                ..
            } = &a.undo
                && link.apply(proxy_fault(&a.fault).0).await.is_ok()
            {
                self.emit(&a.fault, "reapplied").await;
            }
        }
    }

    async fn emit(&self, fault: &Fault, phase: &str) {
        let kind = EventKind::Fault {
            fault: fault.kind.name().into(),
            target: fault.target.to_string(),
            phase: phase.into(),
        };
        let _ = self.events.send(Event::now(fault.target.to_string(), kind)).await;
    }
}

/// A link fault in the proxy's terms, and the kind that clears it.
fn proxy_fault(fault: &Fault) -> (proxy::Fault, proxy::FaultKind) {
    match fault.kind {
        FaultKind::Latency => (
            proxy::Fault::Latency {
                delay: fault.delay,
                jitter: fault.jitter,
            },
            proxy::FaultKind::Latency,
        ),
        FaultKind::Bandwidth => (
            proxy::Fault::Bandwidth {
                bytes_per_sec: fault.bytes_per_sec,
            },
            proxy::FaultKind::Bandwidth,
        ),
        FaultKind::Stall => (proxy::Fault::Stall, proxy::FaultKind::Stall),
        FaultKind::Reset => (proxy::Fault::Reset, proxy::FaultKind::Reset),
        _ => (proxy::Fault::Partition, proxy::FaultKind::Partition),
    }
}

/// Puts the link faults back each time the link proxy container was
/// started again, until the lab's faults are gone.
async fn reapply(faults: std::sync::Weak<Faults>, mut restarts: tokio::sync::watch::Receiver<u64>) {
    while restarts.changed().await.is_ok() {
        let Some(faults) = faults.upgrade() else { return };
        faults.reapply_remote().await;
    }
}

/// Runs the lab's `[[chaos]]` scenarios from now on, until the task is
/// dropped or aborted.
pub(crate) async fn run_scenarios(faults: Arc<Faults>, scenarios: Vec<chaos::Scenario>, seed: u64) {
    let horizon = Duration::from_secs(7 * 24 * 3600);
    let start = tokio::time::Instant::now();
    for planned in chaos::schedule(&scenarios, seed, horizon) {
        tokio::time::sleep_until(start + planned.at).await;
        // A fault that cannot be applied now (its node is down) is skipped;
        // the event log shows what was applied.
        let _ = faults.apply(planned.fault).await;
    }
}

/// What a fault in force makes of a node's state: "paused" or "stopped"
/// (the supervisor alone cannot tell a SIGSTOPped server from a slow one).
pub(crate) fn node_state(active: &[ActiveFault], node: &str) -> Option<&'static str> {
    let on_node = |kind: FaultKind| {
        active
            .iter()
            .any(|a| a.fault.kind == kind && matches!(&a.fault.target, Target::Node { node: n } if n == node))
    };
    if on_node(FaultKind::Pause) {
        Some("paused")
    } else if on_node(FaultKind::Stop) {
        Some("stopped")
    } else {
        None
    }
}

/// The faults in force on one replication link, as its status row shows
/// them, in the order applied: faults on the link itself ("latency
/// 200ms±20ms", "partition") and node faults on either end ("pause
/// subscriber1"). `None` when there are none.
pub(crate) fn link_fault(active: &[ActiveFault], publisher: &str, subscriber: &str) -> Option<String> {
    let mut said = Vec::new();
    for a in active {
        let f = &a.fault;
        match &f.target {
            Target::Link {
                publisher: p,
                subscriber: s,
            } if p == publisher && s == subscriber => said.push(match f.kind {
                FaultKind::Latency => format!("latency {:?}±{:?}", f.delay, f.jitter),
                FaultKind::Bandwidth => format!("bandwidth {} B/s", f.bytes_per_sec),
                kind => kind.name().to_string(),
            }),
            Target::Node { node } if node == publisher || node == subscriber => {
                said.push(format!("{} {node}", f.kind));
            }
            _ => {}
        }
    }
    (!said.is_empty()).then(|| said.join(", "))
}

/// True while a partition cuts the link (its slot may still read active
/// until the walsender's timeout notices).
pub(crate) fn link_cut(active: &[ActiveFault], publisher: &str, subscriber: &str) -> bool {
    active.iter().any(|a| {
        a.fault.kind == FaultKind::Partition
            && matches!(&a.fault.target, Target::Link { publisher: p, subscriber: s } if p == publisher && s == subscriber)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn active(kind: FaultKind, target: Target) -> ActiveFault {
        let mut fault = Fault::new(kind, target);
        fault.delay = Duration::from_millis(200);
        ActiveFault {
            id: 1,
            fault,
            started_ns: 0,
            ends_ns: None,
        }
    }

    fn link(p: &str, s: &str) -> Target {
        Target::Link {
            publisher: p.into(),
            subscriber: s.into(),
        }
    }

    #[test]
    fn faults_in_force_name_node_and_link_states() {
        let node = |n: &str| Target::Node { node: n.into() };
        let all = [
            active(FaultKind::Pause, node("sub1")),
            active(FaultKind::Stop, node("sub2")),
            active(FaultKind::Latency, link("pub", "sub2")),
            active(FaultKind::Partition, link("pub", "sub3")),
        ];
        assert_eq!(node_state(&all, "sub1"), Some("paused"));
        assert_eq!(node_state(&all, "sub2"), Some("stopped"));
        assert_eq!(node_state(&all, "pub"), None);
        assert_eq!(link_fault(&all, "pub", "sub1").as_deref(), Some("pause sub1"));
        assert_eq!(
            link_fault(&all, "pub", "sub2").as_deref(),
            Some("stop sub2, latency 200ms±20ms")
        );
        assert_eq!(link_fault(&all, "pub", "sub3").as_deref(), Some("partition"));
        assert_eq!(link_fault(&all, "pub", "sub4"), None);
        assert!(link_cut(&all, "pub", "sub3"));
        assert!(!link_cut(&all, "pub", "sub2"));
    }
}
