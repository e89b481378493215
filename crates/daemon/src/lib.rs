//! The `up` daemon: it owns a running lab. [`up::run`] turns a checked
//! `lab::Plan` into running, supervised Postgres nodes with logical
//! replication, serves the control API (`api` crate types) on 127.0.0.1, and
//! appends every supervisor event to the event log.
//!
//! [`assemble`] is the only place a Plan becomes stage options (pg node
//! specs, supervisor unit specs, links, store, sampler, hum, alerts);
//! `running::Lab` is the running lab every part reads; `backend::Node` is
//! the one way to start, stop, signal and inspect a node (the native
//! supervised server today); [`layout::StateDir`] names every file the
//! lab keeps on disk. The CLI uses both for the commands that work without a
//! daemon (`psql`, `env`, `verify`, `down` of a lab whose daemon was killed).

mod alerts;
pub mod assemble;
mod backend;
mod ddlfollow;
pub mod eventlog;
pub mod faults;
pub mod humtables;
pub mod layout;
mod leftovers;
pub mod links;
pub mod ports;
pub mod preflight;
mod replwatch;
mod routes;
mod running;
pub mod secrets;
mod services;
mod stages;
mod status;
pub mod up;

pub use layout::StateDir;
pub use up::{UpOptions, run, tail};
