//! `prodhome report`'s page: one self-contained HTML file that tells a
//! run's story, with its charts drawn as inline SVG.
//!
//! Pure: [`render`] takes a typed [`Run`] (the lab as planned, the series
//! read from the store, the events from the event log, over one window)
//! and returns the page as a string. No I/O, no network, no external
//! assets: no script, font, stylesheet or image is fetched, and every
//! piece of user data (table names, statements, messages) is escaped.
//!
//! The page's sections, each an `<section id=…>`: `lab` (nodes,
//! replications, services), `ran` (hum's settings and events, faults,
//! migrations and DDL), `charts` (hum's throughput and latency,
//! replication lag, locks), `logs` (the log reader's series: errors by
//! SQLSTATE, deadlocks, checkpoints, slow statements — "no log data" when
//! the store has none), `timeline` (every event, faults and migrations as
//! spans), `errors` and `slow` (the top errors and slow statements) and
//! `verdicts` (verify/soak). Which series a chart draws is a small table,
//! [`charts::CHARTS`], keyed by measurement and field: a measurement it
//! does not name is left out.

pub mod charts;
mod html;
mod sections;
mod svg;
mod tables;
mod time;

use std::collections::BTreeMap;

pub use html::escape;

/// Everything a report shows.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub lab: LabInfo,
    /// The window, in ns since the epoch.
    pub since_ns: i64,
    pub until_ns: i64,
    /// The series in the window, as the store holds them.
    pub series: Vec<Series>,
    /// The events in the window, oldest first.
    pub events: Vec<model::Event>,
    /// Things the reader of the report should know about how it was made
    /// (no metrics store yet, say).
    pub notes: Vec<String>,
}

/// The lab as planned. Never holds a secret: the caller copies names,
/// ports and settings only.
#[derive(Debug, Clone, Default)]
pub struct LabInfo {
    pub name: String,
    pub nodes: Vec<NodeInfo>,
    pub replications: Vec<ReplicationInfo>,
    pub services: Vec<ServiceInfo>,
    /// Hum's settings as (name, value); `None` when the lab has no hum.
    pub hum: Option<Vec<(String, String)>>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub port: Option<u16>,
    /// Postgres settings the lab file sets.
    pub settings: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct ReplicationInfo {
    pub name: String,
    pub publisher: String,
    pub subscribers: Vec<String>,
    /// The tables it replicates, as the lab file says them.
    pub tables: String,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    pub name: String,
    /// The command as the lab file writes it (secrets are references there).
    pub command: String,
}

/// One series: a measurement, its tags, one field and its samples as
/// (timestamp ns, value), oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub field: String,
    pub points: Vec<(i64, f64)>,
}

/// The page.
pub fn render(run: &Run) -> String {
    let mut page = String::with_capacity(64 * 1024);
    html::head(&mut page, &format!("prodhome report: {}", run.lab.name));
    sections::header(&mut page, run);
    sections::lab(&mut page, &run.lab);
    sections::ran(&mut page, run);
    sections::charts(&mut page, run);
    sections::logs(&mut page, run);
    sections::timeline(&mut page, run);
    tables::errors(&mut page, run);
    tables::slow(&mut page, run);
    sections::verdicts(&mut page, run);
    html::foot(&mut page);
    page
}

#[cfg(test)]
mod tests;
