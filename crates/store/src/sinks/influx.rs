//! The InfluxDB sink: line protocol over HTTP, gzip-compressed, in batches.
//!
//! Points wait in the sink's bounded queue ([`InfluxOptions::buffer`]
//! points; what does not fit is dropped and counted, so a slow or dead
//! InfluxDB never holds up a producer). The task takes up to
//! [`InfluxOptions::batch`] points, or whatever arrived within a second of
//! the first, and POSTs them. A failed write is retried with backoff (5xx,
//! 429 and network errors); a request InfluxDB refuses (other 4xx: a bad
//! point, a field whose type changed, wrong credentials) is not, and the
//! batch counts as failed with InfluxDB's own message as the last error.
//!
//! With the v1 API the sink creates its database when it is missing, as
//! Telegraf does: once on start and again whenever a write is answered
//! "database not found" ([`InfluxOptions::create_database`] turns that
//! off). Every line carries the tag `lab` ([`InfluxOptions::lab`]), so labs
//! can share a database and a dashboard can tell them apart.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use model::Secret;
use reqwest::{StatusCode, Url};
use tokio::time::{Instant, sleep, timeout_at};

use crate::error::Error;
use crate::lane::{Counters, Inbox, Item, Msg};
use crate::line_protocol;
use crate::sinks::influx_admin as admin;
pub use crate::sinks::influx_options::{InfluxApi, InfluxOptions};

/// How long a batch may wait for more points before it is sent anyway.
const LINGER: Duration = Duration::from_secs(1);
/// One request's limit: a server that accepts the connection and never
/// answers must not hold the batch forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per batch, and the backoff between them (doubling).
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A prepared writer: the full write URL and the credentials.
pub(crate) struct Target {
    url: Url,
    token: Option<Secret>,
    client: reqwest::Client,
    lab: Option<String>,
    /// The database to create when missing (v1 with `create_database`).
    create: Option<admin::Database>,
}

impl Target {
    pub(crate) fn new(opts: &InfluxOptions) -> Result<Target, Error> {
        let base = opts.url.trim_end_matches('/');
        let (path, params, token) = match &opts.api {
            InfluxApi::V1 { db } => ("/write", vec![("db", db.as_str()), ("precision", "ns")], None),
            InfluxApi::V2 { org, bucket, token } => (
                "/api/v2/write",
                vec![
                    ("org", org.as_str()),
                    ("bucket", bucket.as_str()),
                    ("precision", "ns"),
                ],
                Some(token.clone()),
            ),
        };
        let url = Url::parse_with_params(&format!("{base}{path}"), &params).map_err(|e| {
            Error::with(
                format!(
                    "the InfluxDB URL `{}` is not valid; write e.g. http://127.0.0.1:8086",
                    opts.url
                ),
                e,
            )
        })?;
        let client = admin::client(REQUEST_TIMEOUT)?;
        let create = match &opts.api {
            InfluxApi::V1 { db } if opts.create_database => Some(admin::Database::new(base, db)?),
            _ => None,
        };
        Ok(Target {
            url,
            token,
            client,
            lab: opts.lab.clone(),
            create,
        })
    }

    /// Creates the database if this sink is to (v1): on start, and when a
    /// write found it missing. A failure is the write's to report.
    async fn create_database(&self) -> Result<bool, String> {
        match &self.create {
            Some(db) => db.create(&self.client).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// One POST of a gzip-compressed body.
    async fn post(&self, body: Vec<u8>) -> Result<(), Attempt> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Content-Encoding", "gzip")
            .body(body);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Token {}", token.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| Attempt::Retry(format!("writing to InfluxDB at {}: {e}", self.host())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let said = admin::error_text(&text);
        // InfluxDB's words first: they are what a status line has room for.
        let message = format!(
            "{said} (InfluxDB at {} answered {status} to a write)",
            self.host()
        );
        if status == StatusCode::NOT_FOUND && said.starts_with("database not found") {
            Err(Attempt::NoDatabase(message))
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(Attempt::Retry(message))
        } else {
            Err(Attempt::GiveUp(message))
        }
    }

    fn host(&self) -> String {
        format!(
            "{}:{}",
            self.url.host_str().unwrap_or("?"),
            self.url.port_or_known_default().unwrap_or(0)
        )
    }
}

enum Attempt {
    Retry(String),
    GiveUp(String),
    /// The database does not exist (v1): create it, or give up.
    NoDatabase(String),
}

/// Gzips line protocol.
pub(crate) fn gzip(text: &str) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(text.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(text.as_bytes());
    enc.finish().unwrap_or_default()
}

/// The sink's task.
pub(crate) async fn run(target: Target, mut inbox: Inbox, batch: usize) {
    let batch = batch.max(1);
    if let Err(e) = target.create_database().await {
        // Not failing yet: the first write tries again and says how it went.
        inbox.counters.retrying(e);
    }
    let mut pending: Vec<Item> = Vec::new();
    let mut held = 0usize;
    loop {
        let Some(first) = inbox.rx.recv().await else {
            break;
        };
        held += item_cost(&first);
        let mut flush = matches!(first.msg, Msg::Flush(_));
        pending.push(first);
        let deadline = Instant::now() + LINGER;
        while held < batch && !flush {
            match timeout_at(deadline, inbox.rx.recv()).await {
                Ok(Some(item)) => {
                    held += item_cost(&item);
                    flush = matches!(item.msg, Msg::Flush(_));
                    pending.push(item);
                }
                Ok(None) | Err(_) => break,
            }
        }
        send(&target, &inbox, std::mem::take(&mut pending)).await;
        held = 0;
    }
    if !pending.is_empty() {
        send(&target, &inbox, pending).await;
    }
}

/// One batch's write: retried with backoff while retrying may help, and
/// after creating the database when it was missing. `Err` is the last
/// error, the batch given up on.
async fn write(target: &Target, counters: &Counters, body: Vec<u8>) -> Result<(), String> {
    let mut backoff = FIRST_BACKOFF;
    let mut created = false;
    let mut attempt = 1;
    loop {
        let message = match target.post(body.clone()).await {
            Ok(()) => return Ok(()),
            Err(Attempt::GiveUp(message)) => return Err(message),
            Err(Attempt::NoDatabase(message)) if !created => match target.create_database().await {
                // Created (or made by someone else meanwhile): write again now.
                Ok(true) => {
                    created = true;
                    continue;
                }
                Ok(false) => return Err(message),
                Err(e) => return Err(format!("{message}; creating it failed: {e}")),
            },
            Err(Attempt::NoDatabase(message)) => return Err(message),
            Err(Attempt::Retry(message)) => message,
        };
        if attempt >= ATTEMPTS {
            return Err(message);
        }
        attempt += 1;
        // The last error shows in status while the retries go on.
        counters.retrying(message);
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn item_cost(item: &Item) -> usize {
    match &item.msg {
        Msg::Points(p) => p.len(),
        Msg::Event(_) => 1,
        Msg::Flush(_) => 0,
    }
}

/// Encodes the items, writes them with retries, then answers flushes and
/// gives their room back.
async fn send(target: &Target, inbox: &Inbox, items: Vec<Item>) {
    let lab = target.lab.as_deref();
    let mut text = String::new();
    let mut n = 0;
    for item in &items {
        match &item.msg {
            Msg::Points(points) => {
                for p in points.iter() {
                    n += line_protocol::encode(p, lab, &mut text) as usize;
                }
            }
            Msg::Event(e) => {
                n += line_protocol::encode(&line_protocol::event_point(e), lab, &mut text) as usize;
            }
            Msg::Flush(_) => {}
        }
    }
    if n > 0 {
        match write(target, &inbox.counters, gzip(&text)).await {
            Ok(()) => inbox.counters.wrote(n),
            Err(message) => inbox.counters.failed(n, message),
        }
    }
    for item in items {
        if let Msg::Flush(done) = item.msg {
            let _ = done.send(());
        }
    }
}
