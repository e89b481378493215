//! The control API: the one contract between the `prodhome` CLI and the `up`
//! daemon. The daemon serves these types as JSON on 127.0.0.1; the CLI reads
//! them with [`Client`]. `daemon.json` in the state directory ([`DaemonInfo`])
//! tells the CLI where the daemon listens.
//!
//! Routes: `GET /api/status` → [`Status`] (`?wait_ms=N` holds the answer
//! up to N ms, at most 30 s, while the lab is starting); `GET /api/events?since=NS` → a
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
    /// The container the node runs in (`backend = "docker"`), e.g.
    /// `prodhome-LAB-NODE`; absent for a native node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
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
    /// The container the service runs in (`image` or `container = true`
    /// in a docker lab), e.g. `prodhome-LAB-SERVICE`; absent natively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
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

/// Failure to talk to the daemon, or its refusal: which one is told by
/// [`Error::is_no_daemon`], [`Error::is_unauthorized`], [`Error::status`]
/// (with [`Error::message`], the daemon's reason) and [`Error::is_decode`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug, thiserror::Error)]
enum ErrorKind {
    /// Nothing listens at the address: no daemon runs there (any more).
    #[error("the prodhome daemon at {api} did not answer: {source}")]
    NoDaemon { api: String, source: reqwest::Error },
    /// The request went out but no answer came back (a timeout, a reset).
    #[error("the prodhome daemon at {api} did not answer: {source}")]
    Transport { api: String, source: reqwest::Error },
    /// 401: the request lacked the owner's token; the body says who may.
    #[error("the prodhome daemon at {api} refused (401): {}", .why.trim_end())]
    Unauthorized { api: String, why: String },
    /// Any other answer but 2xx; the body is the daemon's reason, written
    /// for the user, so it is what the error says.
    #[error("{}", refusal(.api, *.status, .message))]
    Status {
        api: String,
        status: u16,
        message: String,
    },
    /// A 2xx answer whose body is not the type this client expects (a
    /// daemon of another version).
    #[error("the prodhome daemon at {api} answered in a form this prodhome cannot read: {source}")]
    Decode { api: String, source: reqwest::Error },
}

/// A refusal's text: the daemon's reason, or its status when it gave none.
fn refusal(api: &str, status: u16, message: &str) -> String {
    match message.trim_end() {
        "" => format!("the prodhome daemon at {api} answered {status}"),
        why => why.to_string(),
    }
}

impl Error {
    /// True when nothing listens at the daemon's address (no daemon runs).
    pub fn is_no_daemon(&self) -> bool {
        matches!(self.kind, ErrorKind::NoDaemon { .. })
    }

    /// True when the daemon refused for want of the owner's token.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.kind, ErrorKind::Unauthorized { .. })
    }

    /// The HTTP status of a refusal (401 included); `None` when the daemon
    /// did not answer or its answer could not be read.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::Unauthorized { .. } => Some(401),
            ErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The daemon's reason for a refusal, as it wrote it (e.g. why a fault
    /// cannot be applied); `None` for the other failures.
    pub fn message(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Unauthorized { why, .. } => Some(why.trim_end()),
            ErrorKind::Status { message, .. } => Some(message.trim_end()),
            _ => None,
        }
    }

    /// True when the daemon answered 2xx with a body this client cannot read.
    pub fn is_decode(&self) -> bool {
        matches!(self.kind, ErrorKind::Decode { .. })
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

    /// The status once start-up has ended (ready or failed), or after
    /// `wait` while the lab is still starting: a long poll.
    pub async fn settled_status(&self, wait: Duration) -> Result<Status, Error> {
        self.get(&format!("/api/status?wait_ms={}", wait.as_millis()))
            .await
    }

    /// The lab's events at or after `since_ns` (ns since the epoch), oldest first.
    pub async fn events(&self, since_ns: i64) -> Result<Vec<model::Event>, Error> {
        self.get(&format!("/api/events?since={since_ns}")).await
    }

    /// Applies a fault now; a fault the daemon cannot apply is an [`Error`]
    /// with a [`status`](Error::status) and the daemon's reason as its
    /// [`message`](Error::message).
    pub async fn chaos(&self, fault: &chaos::Fault) -> Result<ActiveFault, Error> {
        let req = self.request(reqwest::Method::POST, "/api/chaos").json(fault);
        let resp = self.answered(req.send().await).await?;
        self.decode(resp).await
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
    /// "stop" or "restart"); a refusal carries the daemon's reason.
    pub async fn unit(&self, name: &str, action: &str) -> Result<(), Error> {
        self.post(&format!("/api/units/{name}/{action}")).await
    }

    /// Records `event` (a migration's start or end) in the lab's event log;
    /// a refusal carries the daemon's reason (e.g. a kind it does not take).
    pub async fn event(&self, event: &model::Event) -> Result<(), Error> {
        let req = self.request(reqwest::Method::POST, "/api/events").json(event);
        self.answered(req.send().await).await.map(drop)
    }

    /// Asks the daemon to stop the lab and exit.
    pub async fn down(&self) -> Result<(), Error> {
        self.post("/api/down").await
    }

    async fn post(&self, path: &str) -> Result<(), Error> {
        let resp = self.request(reqwest::Method::POST, path).send().await;
        self.answered(resp).await.map(drop)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let resp = self.request(reqwest::Method::GET, path).send().await;
        let resp = self.answered(resp).await?;
        self.decode(resp).await
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.api));
        match &self.token {
            Some(token) => req.bearer_auth(token.expose()),
            None => req,
        }
    }

    /// The response if it is a 2xx; otherwise why not: no daemon, no
    /// answer, or the daemon's refusal with its reason.
    async fn answered(
        &self,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, Error> {
        let resp = resp.map_err(|source| self.unanswered(source))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        // A body that cannot be read still leaves the status to tell.
        let message = resp.text().await.unwrap_or_default();
        let api = self.api.clone();
        let kind = if status == reqwest::StatusCode::UNAUTHORIZED {
            ErrorKind::Unauthorized { api, why: message }
        } else {
            let status = status.as_u16();
            ErrorKind::Status { api, status, message }
        };
        Err(Error { kind })
    }

    async fn decode<T: serde::de::DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T, Error> {
        resp.json().await.map_err(|source| {
            let api = self.api.clone();
            // A body cut off mid-way is a failed transfer, not a bad form.
            let kind = if source.is_decode() {
                ErrorKind::Decode { api, source }
            } else {
                ErrorKind::Transport { api, source }
            };
            Error { kind }
        })
    }

    /// A request that got no answer: refused connections mean no daemon.
    fn unanswered(&self, source: reqwest::Error) -> Error {
        let api = self.api.clone();
        let kind = if source.is_connect() {
            ErrorKind::NoDaemon { api, source }
        } else {
            ErrorKind::Transport { api, source }
        };
        Error { kind }
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

    #[tokio::test]
    async fn a_port_nobody_listens_on_is_no_daemon_and_says_where() {
        // A port just freed: connecting to it is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let api = format!("http://127.0.0.1:{port}");
        let e = Client::new(&api).status().await.unwrap_err();
        assert!(e.is_no_daemon(), "{e:?}");
        assert!(!e.is_unauthorized() && !e.is_decode(), "{e:?}");
        assert_eq!((e.status(), e.message()), (None, None));
        let said = e.to_string();
        assert!(said.contains(&api) && said.contains("did not answer"), "{said}");
    }
}
