//! The `up` daemon: it owns a running lab. [`run`] turns a checked
//! `lab::Plan` into running, supervised Postgres nodes with logical
//! replication, serves the control API (`api` crate types) on 127.0.0.1, and
//! appends every supervisor event to the event log.
//!
//! `assemble` is the only place a Plan becomes stage options (pg
//! node specs, supervisor unit specs, links, store, sampler, hum, alerts);
//! `running::Lab` is the running lab every part reads; `backend::Node` is
//! the one way to start, stop, signal and inspect a node (the native
//! supervised server, or a container); [`layout::StateDir`] names every
//! file the lab keeps on disk. The CLI reads a lab with no daemon running
//! (`psql`, `env`, `verify`, `down` of a lab whose daemon was killed) only
//! through [`offline`], and a running one only through `api`; every other
//! module is private.

mod alerts;
mod assemble;
mod backend;
mod ddlfollow;
mod eventlog;
mod external;
mod faults;
mod humtables;
mod lablock;
mod labname;
pub mod layout;
mod leftovers;
mod links;
pub mod offline;
mod ports;
mod preflight;
mod replwatch;
mod routes;
mod running;
mod secrets;
mod service;
mod services;
mod stages;
mod status;
mod up;

pub use external::ExternalLab;
pub use layout::StateDir;
pub use up::{UpOptions, run, tail};
