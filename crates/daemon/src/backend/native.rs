//! The native backend: the node's server runs on this machine as the
//! server account, a unit of the `supervisor` crate (which restarts it,
//! probes it and emits its events).

use model::Event;
use nix::sys::signal::Signal;
use pg::NodeSpec;
use supervisor::{UnitHandle, UnitSpec};
use tokio::sync::mpsc;

use super::{Node, NodeSignal, NotRunning};

/// A server process under the supervisor.
#[derive(Clone)]
pub(crate) struct NativeNode {
    pub(crate) spec: NodeSpec,
    pub(crate) unit: UnitHandle,
}

/// Hands `spec`'s server to the supervisor as `unit` says
/// (`assemble::node_unit`), not started yet.
pub(crate) fn spawn(spec: &NodeSpec, unit: UnitSpec, events: mpsc::Sender<Event>) -> Node {
    Node::Native(NativeNode {
        spec: spec.clone(),
        unit: supervisor::spawn_unit(unit, events),
    })
}

impl NativeNode {
    pub(crate) fn signal(&self, signal: NodeSignal) -> Result<(), NotRunning> {
        signal_unit(&self.unit, signal)
    }
}

/// Signals a supervised process and everything it started: a native node,
/// or a service (faults pause and kill those the same way).
pub(crate) fn signal_unit(unit: &UnitHandle, signal: NodeSignal) -> Result<(), NotRunning> {
    let pid = unit.status().pid.ok_or(NotRunning)?;
    let signal = match signal {
        // The whole tree at once, as when its machine dies.
        NodeSignal::Kill => Signal::SIGKILL,
        // The leader first, so it forks nothing meanwhile.
        NodeSignal::Pause => Signal::SIGSTOP,
        NodeSignal::Resume => Signal::SIGCONT,
    };
    supervisor::signal_tree(pid, signal);
    Ok(())
}
