//! The dispatcher of the conference "dispatch" system, the app service of
//! `examples/dispatch/`: a small real program that prodhome supervises like
//! any other service.
//!
//! It reads pickup requests from the `pickups` table of one Postgres
//! database ([`Config`], from the environment), marks them dispatched in
//! batches (`FOR UPDATE SKIP LOCKED`, so several dispatchers can share a
//! table) and logs one line per batch to stdout (its output, which tests
//! and users read); trouble goes through `tracing` (the binary writes it to
//! stderr). It is built for retrying:
//! it waits for the database at start, reconnects after a lost connection,
//! and never exits on its own; SIGTERM finishes the current batch and ends
//! it with status 0. `GET /health` on 127.0.0.1:`PORT` answers 200 once it
//! is connected (a readiness probe), `GET /live` 200 while its loop turns (a
//! liveness probe). It never logs `DATABASE_URL`, only the host and port.

mod config;
mod health;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls, Statement};

pub use config::{Config, ConfigError};
use health::Health;

/// Idempotent, so every (re)connect can run it; examples/dispatch/schema.sql
/// holds the same DDL so that the table replicates.
pub const SCHEMA: &str = "create table if not exists pickups (\
    id bigserial primary key, \
    rider text not null, \
    requested_at timestamptz not null default now(), \
    dispatched_at timestamptz, \
    dispatched_by text)";

/// One statement, so one transaction: the rows are locked, marked and
/// returned atomically; rows another dispatcher holds are skipped, not
/// waited for.
const DISPATCH: &str = "update pickups set dispatched_at = now(), dispatched_by = $1 \
    where id in (select id from pickups where dispatched_at is null \
    order by id limit $2 for update skip locked) \
    returning id";

/// Longer than this, a connect or a batch counts as a lost connection.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot listen on 127.0.0.1:{port} for the health endpoint: {source}; is another process using PORT={port}?"
    )]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Runs until `stop` turns true (or its sender is dropped): then the batch
/// in flight completes and `run` returns `Ok`. Fails only when the health
/// port cannot be bound; database trouble is retried forever.
pub async fn run(config: Config, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
    let health = Health::new();
    let listener = TcpListener::bind(("127.0.0.1", config.port))
        .await
        .map_err(|source| Error::Listen {
            port: config.port,
            source,
        })?;
    tokio::spawn(health::serve(listener, health.clone()));
    let worker = format!("dispatcher-{}", std::process::id());
    let address = config.database_address();
    println!(
        "{worker}: database {address}, batch {}, interval {} ms, health on http://127.0.0.1:{}/health",
        config.batch,
        config.interval.as_millis(),
        config.port
    );
    let mut sessions = 0u64;
    'connect: loop {
        sessions += 1;
        let Some(session) = connect(&config, &health, sessions, &mut stop).await else {
            break;
        };
        loop {
            health.beat();
            match tokio::time::timeout(OP_TIMEOUT, session.dispatch(&worker, config.batch)).await {
                Ok(Ok(ids)) => {
                    log_batch(&ids);
                    if stopping(&stop) {
                        break 'connect;
                    }
                    if ids.len() as i64 == config.batch {
                        continue; // more are probably waiting
                    }
                }
                Ok(Err(e)) => {
                    let why = causes(&e);
                    tracing::warn!(
                        "lost the database at {address}: {why}; reconnecting (build for retrying)"
                    );
                    break;
                }
                Err(_) => {
                    tracing::warn!(
                        "a batch on {address} took over {} s; reconnecting (build for retrying)",
                        OP_TIMEOUT.as_secs()
                    );
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(config.interval) => {}
                _ = stopped(&mut stop) => break 'connect,
            }
        }
        health.disconnected(sessions);
        drop(session);
        if stopping(&stop) {
            break;
        }
    }
    println!("{worker}: stop requested; current batch finished, exiting");
    Ok(())
}

/// A database connection, ready to dispatch.
struct Session {
    client: Client,
    dispatch: Statement,
}

impl Session {
    async fn open(
        config: &Config,
        health: &Arc<Health>,
        number: u64,
    ) -> Result<Session, tokio_postgres::Error> {
        let (client, connection) = config.database.connect(NoTls).await?;
        let health = health.clone();
        tokio::spawn(async move {
            let _ = connection.await;
            health.disconnected(number);
        });
        client.batch_execute(SCHEMA).await?;
        let dispatch = client.prepare(DISPATCH).await?;
        Ok(Session { client, dispatch })
    }

    async fn dispatch(&self, worker: &str, batch: i64) -> Result<Vec<i64>, tokio_postgres::Error> {
        let rows = self.client.query(&self.dispatch, &[&worker, &batch]).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}

/// Connects, retrying with exponential backoff until it works; `None` when a
/// stop was requested meanwhile.
async fn connect(
    config: &Config,
    health: &Arc<Health>,
    number: u64,
    stop: &mut watch::Receiver<bool>,
) -> Option<Session> {
    let address = config.database_address();
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1u64.. {
        health.beat();
        let why = match tokio::time::timeout(OP_TIMEOUT, Session::open(config, health, number)).await {
            Ok(Ok(session)) => {
                health.connected(number);
                println!("connected to {address}");
                return Some(session);
            }
            Ok(Err(e)) => causes(&e),
            Err(_) => format!("no answer within {} s", OP_TIMEOUT.as_secs()),
        };
        tracing::warn!(
            "cannot use the database at {address} (attempt {attempt}): {why}; retrying in {} ms (build for retrying)",
            backoff.as_millis()
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(stop) => return None,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    None
}

fn log_batch(ids: &[i64]) {
    if let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) {
        println!("dispatched {} pickups (ids {first}..{last})", ids.len());
    }
}

/// "error connecting to server" alone says little: add what lies beneath
/// (e.g. "Connection refused"). No cause carries the connection string.
fn causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Resolves once a stop is requested (or nobody can request one any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
