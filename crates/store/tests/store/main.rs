//! The store against real sinks: the embedded SQLite store, a real
//! InfluxDB 1.x (Debian's `influxdb`), a real Prometheus (Debian's
//! `prometheus`) scraping `/metrics`, and the InfluxDB v2 request format
//! against a recorded expectation.

mod embedded;
mod handover;
mod influx;
mod prometheus;
mod util;
