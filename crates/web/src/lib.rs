//! The dashboard: one page that shows the whole lab at a glance, served by
//! the `up` daemon from the embedded metrics store, and the same panels
//! exported to Grafana.
//!
//! - [`router`] (for the daemon to mount; this crate binds nothing):
//!   `GET /` the page, `GET /assets/*` its script and style (compiled into
//!   the binary: no network, no npm), `GET /api/series` stored series,
//!   `GET /api/dashboard` every panel's data in one request, `GET
//!   /api/panels` the catalogue, `GET /api/log` the log view's lines
//!   ([`logview`]: the log reader's events filtered by node, level, text). The page also reads the daemon's own
//!   `/api/status` and `/api/events` for node health, annotations and the
//!   status bar; it polls every second.
//! - [`catalogue`]: the panels (measurement, field, tags, unit, title), read
//!   by the page and by [`grafana`], so the two cannot drift.
//! - [`grafana`]: the dashboard JSON model plus datasource and dashboard
//!   provisioning for `prodhome export grafana`.
//!
//! Data comes from `store::query` (SQLite, read-only, beside the daemon's
//! writer); [`frame`] groups it into what a panel draws. Charts are SVG,
//! drawn in the browser by `assets/dash.js`, a small script of our own.

mod assets;
pub mod catalogue;
pub mod frame;
pub mod grafana;
pub mod logview;
mod routes;

pub use catalogue::{Chart, PANELS, Panel, Query, Unit};
pub use frame::{Column, Frame};
pub use grafana::{Datasource, GrafanaExport, grafana_export};
pub use routes::router;
