//! Breaking the lab on purpose: what a fault is, what it targets, and when
//! a scenario applies one.
//!
//! A [`Fault`] is a [`FaultKind`] on a [`Target`] with its parameters,
//! optionally for a while. Node faults (kill, stop, pause, restart) act on a
//! node's process tree through the supervisor; link faults (latency,
//! bandwidth, stall, reset, partition) act on a proxy link: the replication
//! link from a publisher to a subscriber, or the client path to a node. The
//! daemon applies them; this crate decides *what* and *when*, and is pure:
//! [`schedule`] turns the lab's `[[chaos]]` scenarios and a seed into the
//! same timeline every time.

mod fault;
mod schedule;

pub use fault::{Fault, FaultKind, Target, parse_target};
pub use schedule::{Planned, Scenario, schedule};
