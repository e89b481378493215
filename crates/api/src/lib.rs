//! The control API: the one contract between the `prodhome` CLI and the `up`
//! daemon. The daemon serves these types as JSON on 127.0.0.1; the CLI reads
//! them with [`Client`]. `daemon.json` in the state directory ([`DaemonInfo`])
//! tells the CLI where the daemon listens.
//!
//! Routes: `GET /api/status` → [`Status`]; `GET /api/events?since=NS` → a
//! list of `model::Event` ([`Client::events`]); `GET /api/chaos` → the [`ActiveFault`]s;
//! `POST /api/chaos` with a `chaos::Fault` applies it (400 with the reason
//! when it cannot be); `POST /api/chaos/heal` undoes them all; `POST
//! /api/down` stops the lab and the daemon; `POST /api/units/NAME/ACTION`
//! starts, stops or restarts one node or service.
//!
//! Every route but GET needs the owner's token (`api.token` in the state
//! directory, new on every daemon start) as `Authorization: Bearer TOKEN`;
//! without it the daemon answers 401 and does nothing. A [`Client`] sends
//! the token given to [`Client::with_token`].

use std::time::Duration;

use model::Secret;
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
    /// The lab's app services (`[service.NAME]`).
    #[serde(default)]
    pub services: Vec<ServiceStatus>,
    pub replication: Vec<LinkReport>,
    /// The metrics store's sinks (`[sample] sinks`).
    #[serde(default)]
    pub sinks: Vec<SinkStatus>,
}

impl Status {
    /// Ready for work: the daemon says so and every subscription streams (a
    /// link set up but not yet connected is not ready, whatever the phase).
    /// A link under a fault in force counts as the user meant it: a
    /// `[[chaos]]` scenario that starts early must not keep `up -d` waiting.
    pub fn ready(&self) -> bool {
        self.phase == "ready"
            && self
                .replication
                .iter()
                .all(|l| l.state == "streaming" || l.fault.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// "postgres" (services come later).
    pub kind: String,
    /// "ready", "starting", "unready", "down", "failed", "stopped", or
    /// "paused" while a pause fault holds it.
    pub state: String,
    /// The postmaster's pid.
    pub pid: Option<u32>,
    /// The node's own port (direct).
    pub port: u16,
    /// The port of the proxy in front of it, where client-path faults act.
    #[serde(default)]
    pub proxy_port: Option<u16>,
    pub restarts: u32,
    /// How the last run ended, e.g. "killed by signal 9 (SIGKILL)".
    pub last_exit: Option<String>,
    /// When `state` last changed, ns since the epoch.
    pub since_ns: i64,
}

/// One app service: the same fields as a node, without ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// "service".
    pub kind: String,
    /// "ready", "starting", "unready", "down", "failed", "exited" or "stopped".
    pub state: String,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub since_ns: i64,
    /// What the last failing probe said, while it fails.
    pub last_probe_error: Option<String>,
}

/// One subscriber's link of one replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub name: String,
    pub publisher: String,
    pub subscriber: String,
    /// "streaming", "syncing", "disconnected", "missing", "error", "unknown",
    /// or "cut" while a partition fault holds the link.
    pub state: String,
    pub lag_bytes: Option<i64>,
    /// While the state is "error": the subscriber's reason and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The faults in force on this link or its two nodes, e.g.
    /// "latency 200ms±20ms" or "pause subscriber1"; `None` when there are none.
    #[serde(default)]
    pub fault: Option<String>,
}

/// One metrics sink: what it wrote, lost and holds, and whether it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// "embedded", "influx" or "prometheus".
    pub name: String,
    /// "ok", or "failing" from the first batch it gave up on until it
    /// writes one again.
    pub state: String,
    /// Points and events written since the daemon started.
    pub written: u64,
    /// Given up on after failed writes.
    pub failed: u64,
    /// Dropped because its queue was full.
    pub dropped: u64,
    /// Waiting in its queue now.
    pub queued: u64,
    /// What the latest failed write said (kept after a recovery).
    pub last_error: Option<String>,
}

/// A fault in force (or, for instant faults, just applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub id: u64,
    pub fault: chaos::Fault,
    pub started_ns: i64,
    /// When it will be undone; `None` until healed by hand.
    pub ends_ns: Option<i64>,
}

/// Failure to talk to the daemon, or its refusal.
#[derive(Debug)]
pub struct Error {
    api: String,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Http(reqwest::Error),
    /// 401: the request lacked the owner's token; the body says who may.
    Unauthorized(String),
}

impl Error {
    /// True when the daemon refused for want of the owner's token.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.kind, ErrorKind::Unauthorized(_))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ErrorKind::Http(source) => {
                write!(f, "the prodhome daemon at {} did not answer: {source}", self.api)
            }
            ErrorKind::Unauthorized(why) => {
                write!(
                    f,
                    "the prodhome daemon at {} refused (401): {}",
                    self.api,
                    why.trim_end()
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Http(source) => Some(source),
            ErrorKind::Unauthorized(_) => None,
        }
    }
}

/// A client of one daemon's API.
#[derive(Debug, Clone)]
pub struct Client {
    api: String,
    http: reqwest::Client,
    /// The owner's token; `Debug` shows `***`.
    token: Option<Secret>,
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
            token: None,
        }
    }

    /// Sends `token` (the daemon's `api.token`) with every request, as the
    /// routes that change the lab require.
    pub fn with_token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    pub async fn status(&self) -> Result<Status, Error> {
        self.get("/api/status").await
    }

    /// The lab's events at or after `since_ns` (ns since the epoch), oldest first.
    pub async fn events(&self, since_ns: i64) -> Result<Vec<model::Event>, Error> {
        self.get(&format!("/api/events?since={since_ns}")).await
    }

    /// Applies a fault now.
    pub async fn chaos(&self, fault: &chaos::Fault) -> Result<Result<ActiveFault, String>, Error> {
        let resp = self
            .request(reqwest::Method::POST, "/api/chaos")
            .json(fault)
            .send()
            .await;
        let resp = self.admitted(resp).await?;
        if resp.status().is_success() {
            return resp.json().await.map(Ok).map_err(|s| self.err(s));
        }
        // A fault the daemon refused: its reason is the body.
        resp.text().await.map(Err).map_err(|s| self.err(s))
    }

    /// The faults in force.
    pub async fn faults(&self) -> Result<Vec<ActiveFault>, Error> {
        self.get("/api/chaos").await
    }

    /// Undoes every fault.
    pub async fn heal(&self) -> Result<(), Error> {
        self.post("/api/chaos/heal").await
    }

    /// Starts, stops or restarts one node or service (`action` is "start",
    /// "stop" or "restart"); `Err` holds the daemon's reason.
    pub async fn unit(&self, name: &str, action: &str) -> Result<Result<(), String>, Error> {
        let path = format!("/api/units/{name}/{action}");
        let resp = self.request(reqwest::Method::POST, &path).send().await;
        let resp = self.admitted(resp).await?;
        if resp.status().is_success() {
            return Ok(Ok(()));
        }
        resp.text().await.map(Err).map_err(|s| self.err(s))
    }

    /// Records `event` (a migration's start or end) in the lab's event log;
    /// `Err` holds the daemon's reason when it refuses the kind.
    pub async fn event(&self, event: &model::Event) -> Result<Result<(), String>, Error> {
        let resp = self
            .request(reqwest::Method::POST, "/api/events")
            .json(event)
            .send()
            .await;
        let resp = self.admitted(resp).await?;
        if resp.status().is_success() {
            return Ok(Ok(()));
        }
        resp.text().await.map(Err).map_err(|s| self.err(s))
    }

    /// Asks the daemon to stop the lab and exit.
    pub async fn down(&self) -> Result<(), Error> {
        self.post("/api/down").await
    }

    async fn post(&self, path: &str) -> Result<(), Error> {
        let resp = self.request(reqwest::Method::POST, path).send().await;
        let resp = self.admitted(resp).await?;
        resp.error_for_status().map(drop).map_err(|s| self.err(s))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let resp = self.request(reqwest::Method::GET, path).send().await;
        let resp = self.admitted(resp).await?;
        let resp = resp.error_for_status().map_err(|s| self.err(s))?;
        resp.json().await.map_err(|s| self.err(s))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.api));
        match &self.token {
            Some(token) => req.bearer_auth(token.expose()),
            None => req,
        }
    }

    /// The response, unless the request failed or was refused for want of
    /// the owner's token.
    async fn admitted(
        &self,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, Error> {
        let resp = resp.map_err(|s| self.err(s))?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let why = resp.text().await.unwrap_or_default();
        Err(Error {
            api: self.api.clone(),
            kind: ErrorKind::Unauthorized(why),
        })
    }

    fn err(&self, source: reqwest::Error) -> Error {
        Error {
            api: self.api.clone(),
            kind: ErrorKind::Http(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(links: &[(&str, Option<&str>)]) -> Status {
        let replication = links
            .iter()
            .map(|(state, fault)| LinkReport {
                name: "r".into(),
                publisher: "p".into(),
                subscriber: "s".into(),
                state: state.to_string(),
                lag_bytes: None,
                error: None,
                fault: fault.map(str::to_string),
            })
            .collect();
        Status {
            lab: "l".into(),
            api: String::new(),
            phase: "ready".into(),
            message: None,
            nodes: Vec::new(),
            services: Vec::new(),
            replication,
            sinks: Vec::new(),
        }
    }

    #[test]
    fn ready_needs_every_subscription_streaming_unless_a_fault_holds_it() {
        assert!(status(&[("streaming", None), ("streaming", None)]).ready());
        assert!(!status(&[("streaming", None), ("disconnected", None)]).ready());
        assert!(!status(&[("syncing", None)]).ready());
        assert!(status(&[("cut", Some("partition"))]).ready());
        let mut starting = status(&[("streaming", None)]);
        starting.phase = "starting".into();
        assert!(!starting.ready());
    }
}
