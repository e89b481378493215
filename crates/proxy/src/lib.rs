//! prodhome's TCP proxy: the links that sit on every replication connection
//! and in front of every node for clients, so that link faults (latency,
//! bandwidth, stall, reset, partition) happen here and nowhere else.
//!
//! [`start`] binds one [`Link`] — a listener on 127.0.0.1 forwarding every
//! connection to one upstream address — and spawns its accept loop on the
//! current tokio runtime. The [`Link`] handle applies and clears [`Fault`]s at
//! run time; the fault set is published on a `watch` channel, so running
//! connections react at once: a latency or bandwidth fault takes effect at
//! the next chunk, a reset or partition drops connections within
//! milliseconds (RST to both ends). [`LinkStats`] counts connections, bytes
//! each way and faults applied.
//!
//! Data flows client → pump → upstream and back, one pump (`pump.rs`) per
//! direction; with no fault in force a pump is a plain read/write loop.
//! Latency jitter is a pure function of the link's seed ([`jittered_delay`]),
//! so the same seed gives the same delays. Who applies faults, when, and what
//! events they make is the chaos crate's and the daemon's business.
//!
//! [`control`] serves links in another process (a Docker lab's link proxy
//! container) and gives the daemon a client with the same operations.

pub mod control;
mod error;
mod fault;
mod link;
mod pump;
mod resolve;
mod stats;

pub use error::Error;
pub use fault::{Direction, Fault, FaultKind, jittered_delay};
pub use link::{Link, LinkOptions, start};
pub use resolve::{UNRESOLVED, follow_upstream};
pub use stats::LinkStats;
