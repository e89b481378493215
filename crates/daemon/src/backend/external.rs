//! The external backend, the controller's (`prodhome controller`): a
//! server that compose, Swarm or Kubernetes runs, which this process does
//! not start, stop or signal. It is reached by its host name over TCP
//! (`NodeSpec::remote`); a monitor probes it with a real query every
//! [`TICK`] and turns what it sees into the supervisor's states and
//! events, so the status, the alerts and the dashboard read it as any
//! other node. Starting it starts the monitor; stopping it stops the
//! monitor, never the server: that is the engine's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::{Event, EventKind};
use pg::NodeSpec;
use supervisor::{Condition, UnitState, UnitStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Node, PeerAddr, initial_status, wait_for_status};

/// How often the monitor probes the server.
const TICK: Duration = Duration::from_secs(1);
/// A probe of a paused or unreachable server gives up after this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A server an engine runs, watched from here.
#[derive(Clone)]
pub(crate) struct ExternalNode {
    pub(crate) spec: NodeSpec,
    /// The host name other nodes reach this process's proxy links at (the
    /// controller's own service name on the engine's network).
    links_host: Arc<str>,
    status: Arc<watch::Sender<UnitStatus>>,
    monitor: Arc<Mutex<Option<JoinHandle<()>>>>,
    events: mpsc::Sender<Event>,
}

/// The node at `spec.remote`, its monitor not started yet.
pub(crate) fn watch(spec: NodeSpec, links_host: &str, events: mpsc::Sender<Event>) -> Node {
    let (status, _) = watch::channel(initial_status(&spec.name));
    Node::External(ExternalNode {
        spec,
        links_host: links_host.into(),
        status: Arc::new(status),
        monitor: Arc::default(),
        events,
    })
}

impl ExternalNode {
    /// Starts watching the server (once).
    pub(crate) fn start(&self) {
        let mut monitor = self.monitor.lock().unwrap_or_else(|e| e.into_inner());
        if monitor.is_none() {
            self.status.send_modify(|s| {
                s.state = UnitState::Starting;
                s.since_ns = model::now_ns();
            });
            *monitor = Some(tokio::spawn(self.clone().monitor()));
        }
    }

    /// Stops watching; the server runs on, as the engine keeps it.
    pub(crate) fn stop(&self) {
        if let Some(task) = self.monitor.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        self.status.send_modify(|s| {
            s.state = UnitState::Stopped;
            s.healthy = false;
            s.since_ns = model::now_ns();
        });
    }

    pub(crate) async fn wait_for(&self, condition: Condition, timeout: Duration) -> Result<(), UnitStatus> {
        wait_for_status(&self.status, condition, timeout).await
    }

    pub(crate) fn status(&self) -> UnitStatus {
        self.status.borrow().clone()
    }

    /// Another node reaches this one through this process's proxy link
    /// when the path has one (at [`ExternalNode::links_host`]), else
    /// directly by its host name.
    pub(crate) fn reach(&self, other: &Node, link_port: Option<u16>) -> PeerAddr {
        match link_port {
            Some(port) => PeerAddr {
                host: self.links_host.to_string(),
                port,
            },
            None => PeerAddr {
                host: other.spec().tcp_host().to_owned(),
                port: other.spec().port,
            },
        }
    }

    /// Probes every tick: the first answer (and each after a silence) is
    /// `ready`; a silence after one is `not ready`, with what the probe saw.
    async fn monitor(self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let probe = tokio::time::timeout(PROBE_TIMEOUT, pg::probe(&self.spec)).await;
            let error = match probe {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            if let Some(kind) = self.record(error) {
                let _ = self.events.send(Event::now(&self.spec.name, kind)).await;
            }
        }
    }

    /// The status after one probe, and the event its change makes.
    fn record(&self, error: Option<String>) -> Option<EventKind> {
        let mut event = None;
        self.status.send_modify(|s| {
            let was_ready = s.state == UnitState::Ready;
            match &error {
                None if !was_ready => {
                    s.state = UnitState::Ready;
                    s.ready_once = true;
                    s.since_ns = model::now_ns();
                    event = Some(EventKind::Ready);
                }
                Some(message) if was_ready => {
                    s.state = UnitState::Unready;
                    s.since_ns = model::now_ns();
                    event = Some(EventKind::ProbeFailed {
                        probe: "ready".into(),
                        message: message.clone(),
                    });
                }
                _ => {}
            }
            s.healthy = error.is_none();
            s.last_probe_error = error.clone();
        });
        event
    }
}
