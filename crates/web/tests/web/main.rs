//! Tests of the dashboard crate: the routes over a real SQLite store,
//! through real HTTP, and the Grafana export against the dashboard model.

mod grafana;
mod page;
mod routes;
mod util;
