//! The shared vocabulary of prodhome: the small types every stage crate
//! speaks and nothing else.
//!
//! - [`Event`]: something that happened to a unit at a point in time (a node
//!   started, exited, became ready, was restarted). The supervisor produces
//!   them; the daemon appends them to the event log and serves them; later the
//!   store and dashboard draw them as annotations.
//! - [`Exit`]: how a process ended, by code or by signal.
//! - [`Point`]: one sample in InfluxDB's data model (measurement, tags,
//!   fields, timestamp in ns). The sampler and hum make them; the store fans
//!   them out to its sinks.
//! - [`PointSender`]: how producers hand points to the store, through the
//!   [`PointSink`] the store implements: bounded, never waiting, a full
//!   queue drops the batch and counts it ([`Full`]).
//! - [`Secret`]: a string that never prints itself.
//! - [`civil_from_days`]: a day number as a calendar date.
//! - [`root_cause`]: the bottom of an error chain, for messages.
//! - [`parse_duration`]: `500ms`, `30s`, `2m` as lab files, flags and the
//!   API write them.
//!
//! - [`write_atomic`]: a file replaced whole or not at all.
//!
//! This crate has no async runtime and no I/O but that one file helper, so
//! that every other crate can depend on it cheaply.

mod atomic;
mod calendar;
mod duration;
mod error_chain;
mod event;
mod handover;
mod point;
mod secret;
mod slot;

pub use atomic::{write_atomic, write_atomic_owned};
pub use calendar::civil_from_days;
pub use duration::{parse_duration, parse_duration_in};
pub use error_chain::root_cause;
pub use event::{Event, EventKind, Exit, now_ns};
pub use handover::{Full, PointSender, PointSink};
pub use point::{FieldValue, Point};
pub use secret::Secret;
pub use slot::subscription_name;
