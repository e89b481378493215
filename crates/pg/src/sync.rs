//! Waiting for a subscription's initial sync: done when every table is in
//! state `r`, failed as soon as Postgres counts a worker error that will not
//! cure itself, with the subscriber's own reason from its log — rather than
//! a silent retry loop until the timeout.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{Instant, sleep};
use tokio_postgres::Client;

use model::subscription_name;

use crate::NodeSpec;
use crate::error::{Error, ErrorKind, sql};
use crate::synclog::{self, WorkerError};

/// One subscriber of a replication being set up.
pub struct SubscriberSpec<'a> {
    pub node: &'a NodeSpec,
    pub client: &'a Client,
    /// The host and port this subscriber reaches the publisher at (on this
    /// machine, 127.0.0.1 and the link's proxy, so that link faults act on
    /// replication). The daemon's node backend decides them.
    pub publisher_host: String,
    pub publisher_port: u16,
    /// The subscriber's server log, where a failed sync's reason is.
    pub log: PathBuf,
}

/// The least time between two heartbeats of one wait (see [`heartbeat`]).
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// Failures after which the sync is given up even when the reason is not
/// known to be lasting: the first try and its retry both failed.
const RETRIES: i64 = 2;

/// Waits until `sub`'s subscription finished its initial sync, the
/// `publisher` (its admin session) nudged as it goes (see [`heartbeat`]). `created`:
/// the subscription is new, so every error it counted is from this run.
pub(crate) async fn wait_synced(
    replication: &str,
    publisher: &Client,
    sub: &SubscriberSpec<'_>,
    created: bool,
    deadline: Instant,
) -> Result<(), Error> {
    let name = subscription_name(replication, &sub.node.name);
    let what = format!("waiting for subscription {name} on {}", sub.node.name);
    let baseline = if created {
        0
    } else {
        worker_state(sub.client, &name).await?.errors
    };
    let mut last = String::from("no tables yet");
    let mut beat_at: Option<Instant> = None;
    while Instant::now() < deadline {
        let row = sub
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r'), count(*),
                        string_agg(r.srrelid::regclass::text || '=' || r.srsubstate::text, ', '),
                        count(*) FILTER (WHERE r.srsubstate IN ('f', 's'))
                 FROM pg_subscription s LEFT JOIN pg_subscription_rel r ON r.srsubid = s.oid
                 WHERE s.subname = $1",
                &[&name],
            )
            .await
            .map_err(|e| sql(&what, e))?;
        let (pending, total, handing_over): (i64, i64, i64) = (row.get(0), row.get(1), row.get(3));
        if total > 0 && pending == 0 {
            return Ok(());
        }
        // One wake is what a hand-over needs; a catch-up that takes long
        // (the publisher busy) gets one every HEARTBEAT_EVERY, not a row per poll.
        if handing_over > 0 && beat_at.is_none_or(|at| at.elapsed() >= HEARTBEAT_EVERY) {
            heartbeat(publisher, replication).await;
            beat_at = Some(Instant::now());
        }
        last = row.get::<_, Option<String>>(2).unwrap_or(last);
        let failures = worker_state(sub.client, &name).await?.errors - baseline;
        if failures > 0 {
            let reason =
                synclog::last_worker_error(&crate::server_log_dir(&sub.node.data_dir), &sub.log, &name);
            let lasting = reason.as_ref().is_some_and(|r| r.lasting_code().is_some());
            if lasting || failures >= RETRIES {
                return Err(failed(sub, &name, reason, &what).await);
            }
        }
        // Two small queries on the subscriber: asked often, since `up`
        // waits on the last table's sync (~0.1 s in all).
        sleep(Duration::from_millis(10)).await;
    }
    Err(Error::new(
        ErrorKind::Timeout,
        format!(
            "subscription {name} on {} did not finish its initial sync in time (table states: {last}; \
             'r' is ready, 'd' copying, 'i' waiting). Look at `prodhome logs {}` for the reason",
            sub.node.name, sub.node.name
        ),
    ))
}

/// A table whose copy is done ('f') or whose sync worker is done ('s')
/// waits on the subscription's apply worker: to notice it and hand over the
/// stream, then to reach the LSN the sync ended at. The apply worker looks
/// when data comes from the publisher, else once a second (Postgres 15's
/// tablesync.c: "Apply periodically checks tables that are synchronizing"),
/// so on an idle publisher about one `up` in ten waited a second more. A
/// row in `prodhome.probe` (published by every replication of the lab, the
/// sampler's heartbeat table) is a transaction past that LSN for the apply
/// worker to apply, which wakes it. Best effort: a failed heartbeat only
/// leaves the wait as long as Postgres makes it.
async fn heartbeat(publisher: &Client, replication: &str) {
    let _ = publisher
        .execute(
            "INSERT INTO prodhome.probe (replication) VALUES ($1)",
            &[&replication],
        )
        .await;
}

/// What Postgres shows of one subscription's workers, on its subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerState {
    /// Sync and apply failures Postgres 15 counted for the subscription
    /// (`pg_stat_subscription_stats`) since its stats were last reset.
    pub errors: i64,
    /// The apply worker's pid while one runs (`pg_stat_subscription`).
    pub apply_pid: Option<i32>,
    /// How long the server waits before it starts a failed worker again
    /// (`wal_retrieve_retry_interval`).
    pub retry_interval: Duration,
}

/// Reads `subscription`'s [`WorkerState`] over `client` (the subscriber).
/// Both the wait for an initial sync and the daemon's watcher of running
/// links ask this one question.
pub async fn worker_state(client: &Client, subscription: &str) -> Result<WorkerState, Error> {
    let row = client
        .query_one(
            "SELECT (SELECT sync_error_count + apply_error_count FROM pg_stat_subscription_stats
                     WHERE subname = $1),
                    (SELECT pid FROM pg_stat_subscription
                     WHERE subname = $1 AND relid IS NULL AND pid IS NOT NULL LIMIT 1),
                    (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_retrieve_retry_interval')",
            &[&subscription],
        )
        .await
        .map_err(|e| {
            sql(
                &format!("reading the worker state of subscription {subscription}"),
                e,
            )
        })?;
    Ok(WorkerState {
        errors: row.get::<_, Option<i64>>(0).unwrap_or(0),
        apply_pid: row.get(1),
        retry_interval: Duration::from_millis(row.get::<_, Option<i64>>(2).unwrap_or(5000).max(0) as u64),
    })
}

async fn failed(sub: &SubscriberSpec<'_>, name: &str, reason: Option<WorkerError>, what: &str) -> Error {
    let node = &sub.node.name;
    let log = sub.log.display();
    let todo = format!(
        "{node} must be able to take the publisher's rows: a schema file's INSERT and COPY rows go to \
         the publisher only, but a DO block or function that writes rows runs on every node. Fix the table on \
         {node} (prodhome psql {node}) or the schema file and rebuild the lab (`prodhome down --purge`, \
         `prodhome up`); the whole story is in `prodhome logs {node}` ({log})"
    );
    let Some(reason) = reason else {
        return Error::new(
            ErrorKind::Sql,
            format!("{node}: subscription {name} failed its initial sync repeatedly.\n  what to do: {todo}"),
        );
    };
    let subject = match &reason.table {
        Some(table) => format!(
            "initial sync of {} failed",
            qualify(sub.client, name, table, what).await
        ),
        None => format!("subscription {name} failed applying changes"),
    };
    Error::new(
        ErrorKind::Sql,
        format!("{node}: {subject}: {}\n  what to do: {todo}", reason.summary()),
    )
}

/// `schema.table` for a table the log names only by its relation name.
async fn qualify(client: &Client, subscription: &str, table: &str, what: &str) -> String {
    let row = client
        .query_opt(
            "SELECT format('%s.%s', n.nspname, c.relname)
             FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid
             JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE s.subname = $1 AND c.relname = $2 ORDER BY r.srsubstate = 'r' LIMIT 1",
            &[&subscription, &table],
        )
        .await
        .map_err(|e| sql(what, e));
    match row {
        Ok(Some(row)) => row.get(0),
        _ => table.to_string(),
    }
}
