//! `[service.NAME]`, `[secret.NAME]` and `[alert]` as written.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Int;

/// One `[service.NAME]`: any app process the lab runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub(crate) command: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) env: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    pub(crate) workdir: Option<Spanned<String>>,
    pub(crate) depends_on: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    pub(crate) ready: Option<Spanned<RawProbe>>,
    pub(crate) live: Option<Spanned<RawProbe>>,
    pub(crate) restart: Option<Spanned<String>>,
    pub(crate) max_restarts: Option<Spanned<Int>>,
    pub(crate) stop_signal: Option<Spanned<String>>,
    pub(crate) stop_timeout: Option<Spanned<String>>,
    pub(crate) log_level: Option<Spanned<String>>,
    /// An image already in the Docker Engine the service runs from.
    pub(crate) image: Option<Spanned<String>>,
    /// `true`: the service's program packed into an image of its own.
    pub(crate) container: Option<Spanned<bool>>,
}

pub(crate) const SERVICE_KEYS: &[&str] = &[
    "command",
    "env",
    "workdir",
    "depends_on",
    "ready",
    "live",
    "restart",
    "max_restarts",
    "stop_signal",
    "stop_timeout",
    "log_level",
    "image",
    "container",
];

/// `ready = { tcp = 8080 }`, `{ http = "…" }` or `{ exec = [...] }`, with
/// optional `interval`, `timeout` and `threshold`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    pub(crate) tcp: Option<Spanned<Int>>,
    pub(crate) http: Option<Spanned<String>>,
    pub(crate) exec: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) threshold: Option<Spanned<Int>>,
}

/// One `[secret.NAME]`: generated on the first `up`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub(crate) length: Option<Spanned<Int>>,
    pub(crate) alphabet: Option<Spanned<String>>,
}

pub(crate) const SECRET_KEYS: &[&str] = &["length", "alphabet"];

/// `[alert]`: who hears about crash loops, outages and lag.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlert {
    pub(crate) command: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) webhook: Option<Spanned<String>>,
    pub(crate) down_after: Option<Spanned<String>>,
    pub(crate) lag_bytes: Option<Spanned<Int>>,
    pub(crate) min_interval: Option<Spanned<String>>,
}

pub(crate) const ALERT_KEYS: &[&str] = &["command", "webhook", "down_after", "lag_bytes", "min_interval"];
