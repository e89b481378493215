//! Remote control of links that run in another process: the link proxy
//! container of a Docker lab, which carries every replication link of the
//! lab on the lab's own network, where the daemon's host-side proxies
//! cannot sit (a container cannot reach the host's 127.0.0.1).
//!
//! - [`serve_links`] (run by `prodhome link-serve` inside the container)
//!   starts the links, follows each upstream's container name as the
//!   engine's DNS resolves it, and answers the control endpoint.
//! - [`ControlClient`] (the daemon's side) presents the operations a local
//!   [`Link`](crate::Link) has — apply a fault, clear one kind, heal, list
//!   the faults, stats — over that endpoint.
//!
//! The wire (`wire.rs`) is one JSON request per line and one JSON answer
//! per line, over TCP. Every request carries the secret token the daemon
//! generated (read by the server from a mounted file, never from its
//! command line or environment); a wrong one gets `unauthorized` and the
//! connection is closed.

mod client;
mod serve;
mod wire;

pub use client::{ControlClient, ControlError};
pub use serve::{LinkServerOptions, RemoteLinkSpec, ServeError, serve_control, serve_links};
