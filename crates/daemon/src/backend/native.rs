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
        let pid = self.unit.status().pid.ok_or(NotRunning)?;
        let signal = match signal {
            // The whole server at once, as when its machine dies.
            NodeSignal::Kill => Signal::SIGKILL,
            // The postmaster first, so it forks nothing meanwhile.
            NodeSignal::Pause => Signal::SIGSTOP,
            NodeSignal::Resume => Signal::SIGCONT,
        };
        supervisor::signal_tree(pid, signal);
        Ok(())
    }
}
