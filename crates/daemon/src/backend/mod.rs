//! The node backend seam: how the daemon runs one Postgres node, whatever
//! runs it. Everything after start-up's preparation — the phases that
//! start, wait for and stop nodes, faults, the status, the sampler's
//! process stats, the API's start/stop/restart — reaches a node through
//! [`Node`] and nothing else. The backends: [`native`] (a server process
//! on this machine under the `supervisor` crate), [`docker`] (a container
//! on the lab's network) and [`external`] (a server compose, Swarm or
//! Kubernetes runs, watched by `prodhome controller`, which cannot start,
//! stop or signal it: those methods say so or do nothing).
//!
//! # For implementers
//!
//! Add a variant to [`Node`] and one arm to each method below; no other
//! module changes. Each method must keep these promises, which the native
//! backend keeps and the rest of the daemon relies on:
//!
//! - **Events.** The node emits, under its name on the daemon's event
//!   channel, the unit events the supervisor emits (`started`, `ready`,
//!   `exited`, `restarting`, `failed`, `stopped`, …; see
//!   `model::EventKind`): the event log, the alerts (a node down, a crash
//!   loop) and the dashboard read them. A container's engine events are
//!   translated to these.
//! - [`Node::start`] returns once the start was asked for (not when the
//!   server is ready); it never fails: a node that cannot start shows it in
//!   [`Node::status`] and its events. Starting a started node does nothing.
//! - [`Node::stop`] returns once the server is gone (fast shutdown first,
//!   then a kill after a bounded wait). It is not restarted until
//!   [`Node::start`].
//! - [`Node::restart`] is a stop then a start, as one step.
//! - [`Node::signal`] acts on the whole server at once (postmaster and
//!   backends): `Kill` as when its machine dies (it is then restarted by the
//!   backend's restart policy, as a crashed server would be), `Pause`
//!   freezes it (TCP still accepts, nothing answers), `Resume` undoes a
//!   pause. `Err(NotRunning)` when there is no server to signal.
//! - [`Node::wait_ready`] resolves when a real connection ran a real query
//!   (`pg::probe`), or gives the status it ended in after `timeout`.
//! - [`Node::status`] is cheap and never blocks: state, restarts, last
//!   exit, since when. `pid` there is the host pid when there is one.
//! - [`Node::host_pid`] is the postmaster's pid on this machine, where the
//!   sampler reads process stats from `/proc`; `None` when the server has
//!   no host process (a container: its stats must come from the engine).
//! - [`Node::container`] names the node's container, for the status;
//!   `None` when it has none. [`Node::spawn_container_stats`] streams that
//!   container's stats into the store (the engine's view of what `/proc`
//!   gives the sampler for a host process).
//! - [`Node::host_addr`] is where the daemon, the status, the sampler and
//!   hum reach the server: `127.0.0.1:PORT` (a container publishes its
//!   5432 there), or an external node's host name.
//! - [`Node::reach`] is the address *this* node uses to reach another
//!   (a subscriber's connection to its publisher): the replication
//!   connection string is built from it, never assumed. Native: the host
//!   address or the link's proxy on 127.0.0.1; a container: the
//!   publisher's container name on the lab network. (A docker lab's
//!   replication links go through its link proxy container instead, by
//!   that container's name: `links::LinkHandle::lab_network_addr`.)
//! - [`Node::isolate`] cuts the node off its network until
//!   [`Node::rejoin`] (a container: off the lab network, through the
//!   engine); a native node has no network of its own to be cut from.

pub(crate) mod docker;
pub(crate) mod external;
pub(crate) mod native;

use std::time::Duration;

use model::PointSender;
use pg::NodeSpec;
use supervisor::{Condition, UnitState, UnitStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One node of the lab, through its backend.
#[derive(Clone)]
pub(crate) enum Node {
    Native(native::NativeNode),

    Docker(docker::DockerNode),

    External(external::ExternalNode),
}

/// What [`Node::signal`] does to a whole server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeSignal {
    Kill,
    Pause,
    Resume,
}

/// [`Node::signal`] found no server to signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotRunning;

/// A host and port a node connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerAddr {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Node {
    pub(crate) fn name(&self) -> &str {
        &self.spec().name
    }

    /// The node's Postgres spec (data directory, port, settings, credentials).
    pub(crate) fn spec(&self) -> &NodeSpec {
        match self {
            Node::Native(n) => &n.spec,
            Node::Docker(n) => &n.spec,
            Node::External(n) => &n.spec,
        }
    }

    pub(crate) async fn start(&self) {
        match self {
            Node::Native(n) => n.unit.start().await,
            Node::Docker(n) => n.start().await,
            Node::External(n) => n.start(),
        }
    }

    pub(crate) async fn stop(&self) {
        match self {
            Node::Native(n) => n.unit.stop().await,
            Node::Docker(n) => n.stop().await,
            Node::External(n) => n.stop(),
        }
    }

    pub(crate) async fn restart(&self) {
        match self {
            Node::Native(n) => n.unit.restart().await,
            Node::Docker(n) => n.restart().await,
            // The engine's to restart; `Faults` refuses to ask.
            Node::External(_) => {}
        }
    }

    pub(crate) fn signal(&self, signal: NodeSignal) -> Result<(), NotRunning> {
        match self {
            Node::Native(n) => n.signal(signal),
            Node::Docker(n) => n.signal(signal),
            Node::External(_) => Err(NotRunning),
        }
    }

    /// Cuts the node off the network its peers reach it on, until
    /// [`Node::rejoin`]: a container leaves the lab network (its published
    /// port goes with it). A native node shares the host's loopback with
    /// everything: there is no such cut, and the error says what to cut
    /// instead.
    pub(crate) async fn isolate(&self) -> Result<(), String> {
        match self {
            Node::Native(n) => Err(format!(
                "{} runs natively, on the host's loopback: partition its links instead \
                 (clients:{0} or PUBLISHER:{0})",
                n.spec.name
            )),
            Node::Docker(n) => n.isolate().await,
            Node::External(n) => Err(format!(
                "{} runs under the engine, which prodhome's controller does not drive: partition its links instead \
                 (clients:{0} or PUBLISHER:{0})",
                n.spec.name
            )),
        }
    }

    /// Undoes [`Node::isolate`].
    pub(crate) async fn rejoin(&self) -> Result<(), String> {
        match self {
            Node::Native(_) | Node::External(_) => Ok(()),
            Node::Docker(n) => n.rejoin().await,
        }
    }

    pub(crate) async fn wait_ready(&self, timeout: Duration) -> Result<(), UnitStatus> {
        match self {
            Node::Native(n) => n.unit.wait_ready(timeout).await.map(|_| ()),
            Node::Docker(n) => n.wait_for(Condition::Ready, timeout).await,
            Node::External(n) => n.wait_for(Condition::Ready, timeout).await,
        }
    }

    /// Waits until the node is started, ready or healthy (a service's
    /// `depends_on`).
    pub(crate) async fn wait_for(&self, condition: Condition, timeout: Duration) -> Result<(), UnitStatus> {
        match self {
            Node::Native(n) => n.unit.wait_for(condition, timeout).await.map(|_| ()),
            Node::Docker(n) => n.wait_for(condition, timeout).await,
            Node::External(n) => n.wait_for(condition, timeout).await,
        }
    }

    pub(crate) fn status(&self) -> UnitStatus {
        match self {
            Node::Native(n) => n.unit.status(),
            Node::Docker(n) => n.status(),
            Node::External(n) => n.status(),
        }
    }

    /// Whether this process starts, stops and signals the server: false
    /// for an external node, which the engine runs.
    pub(crate) fn is_managed(&self) -> bool {
        !matches!(self, Node::External(_))
    }

    pub(crate) fn host_pid(&self) -> Option<u32> {
        match self {
            Node::Native(n) => n.unit.status().pid,
            Node::Docker(n) => n.status().pid,
            Node::External(_) => None,
        }
    }

    /// The node's container, when it runs in one.
    pub(crate) fn container(&self) -> Option<&str> {
        match self {
            Node::Native(_) | Node::External(_) => None,
            Node::Docker(n) => Some(&n.container),
        }
    }

    /// Starts handing the node's container stats (measurement `container`,
    /// see `engine::stats`) to the store at `interval`; `None` for a node
    /// with no container (the sampler reads its process stats from `/proc`).
    pub(crate) fn spawn_container_stats(
        &self,
        lab: &str,
        interval: Duration,
        points: PointSender,
    ) -> Option<JoinHandle<()>> {
        match self {
            Node::Native(_) | Node::External(_) => None,
            Node::Docker(n) => Some(tokio::spawn(n.clone().sample_stats(lab.into(), interval, points))),
        }
    }

    pub(crate) fn host_addr(&self) -> PeerAddr {
        let spec = self.spec();
        PeerAddr {
            host: spec.tcp_host().to_owned(),
            port: spec.port,
        }
    }

    /// How this node reaches `other`, through the proxy on 127.0.0.1 at
    /// `link_port` when the path has one.
    pub(crate) fn reach(&self, other: &Node, link_port: Option<u16>) -> PeerAddr {
        match self {
            Node::Native(_) => PeerAddr {
                host: std::net::Ipv4Addr::LOCALHOST.to_string(),
                port: link_port.unwrap_or(other.spec().port),
            },
            Node::Docker(n) => n.reach(other),
            Node::External(n) => n.reach(other, link_port),
        }
    }
}

/// A node's status before it is first started.
fn initial_status(name: &str) -> UnitStatus {
    UnitStatus {
        name: name.into(),
        state: UnitState::Stopped,
        pid: None,
        restarts: 0,
        last_exit: None,
        since_ns: model::now_ns(),
        healthy: false,
        last_probe_error: None,
        ready_once: false,
    }
}

/// Waits until a status a backend keeps in `status` meets `condition`, or
/// gives the status it ended in after `timeout`.
async fn wait_for_status(
    status: &watch::Sender<UnitStatus>,
    condition: Condition,
    timeout: Duration,
) -> Result<(), UnitStatus> {
    let mut rx = status.subscribe();
    let met = |s: &UnitStatus| match condition {
        Condition::Started => s.pid.is_some() || s.state == UnitState::Ready,
        Condition::Ready | Condition::Healthy => s.state == UnitState::Ready,
    };
    match tokio::time::timeout(timeout, rx.wait_for(met)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(status.borrow().clone()),
    }
}
