//! The control API: the one contract between the `prodhome` CLI and the `up`
//! daemon. The daemon serves these types as JSON on 127.0.0.1; the CLI reads
//! them with [`Client`]. `daemon.json` in the state directory ([`DaemonInfo`])
//! tells the CLI where the daemon listens.
//!
//! Routes: `GET /api/status` → [`Status`]; `GET /api/events?since=NS` → a
//! list of `model::Event`; `POST /api/down` stops the lab and the daemon.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What `daemon.json` holds while a daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// `http://127.0.0.1:PORT`
    pub api: String,
    pub lab: String,
    /// The lab's fingerprint when the daemon started (see `lab::Plan`).
    pub fingerprint: String,
}

/// The lab as the daemon sees it: what `prodhome status --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub lab: String,
    pub api: String,
    /// "starting", "ready", "failed" or "stopping".
    pub phase: String,
    /// Why the phase is what it is, when that needs saying.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    pub nodes: Vec<NodeStatus>,
    pub replication: Vec<LinkReport>,
}

impl Status {
    pub fn ready(&self) -> bool {
        self.phase == "ready"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// "postgres" (services come later).
    pub kind: String,
    /// "ready", "starting", "unready", "down", "failed" or "stopped".
    pub state: String,
    /// The postmaster's pid.
    pub pid: Option<u32>,
    pub port: u16,
    pub restarts: u32,
    /// How the last run ended, e.g. "killed by signal 9 (SIGKILL)".
    pub last_exit: Option<String>,
    /// When `state` last changed, ns since the epoch.
    pub since_ns: i64,
}

/// One subscriber's link of one replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub name: String,
    pub publisher: String,
    pub subscriber: String,
    /// "streaming", "syncing", "disconnected", "missing" or "unknown".
    pub state: String,
    pub lag_bytes: Option<i64>,
}

/// Failure to talk to the daemon.
#[derive(Debug, thiserror::Error)]
#[error("the prodhome daemon at {api} did not answer: {source}")]
pub struct Error {
    api: String,
    #[source]
    source: reqwest::Error,
}

/// A client of one daemon's API.
#[derive(Debug, Clone)]
pub struct Client {
    api: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(api: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Client {
            api: api.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub async fn status(&self) -> Result<Status, Error> {
        self.get("/api/status").await
    }

    pub async fn events(&self, since_ns: i64) -> Result<Vec<serde_json::Value>, Error> {
        self.get(&format!("/api/events?since={since_ns}")).await
    }

    /// Asks the daemon to stop the lab and exit.
    pub async fn down(&self) -> Result<(), Error> {
        self.http
            .post(format!("{}/api/down", self.api))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map(drop)
            .map_err(|source| self.err(source))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let resp = self.http.get(format!("{}{path}", self.api)).send().await;
        let resp = resp.and_then(|r| r.error_for_status()).map_err(|s| self.err(s))?;
        resp.json().await.map_err(|s| self.err(s))
    }

    fn err(&self, source: reqwest::Error) -> Error {
        Error {
            api: self.api.clone(),
            source,
        }
    }
}
