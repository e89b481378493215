//! Waiting for a subscription's initial sync: done when every table is in
//! state `r`, failed as soon as Postgres counts a worker error that will not
//! cure itself, with the subscriber's own reason from its log — rather than
//! a silent retry loop until the timeout.

use std::time::Duration;

use tokio::time::{Instant, sleep};
use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, sql};
use crate::replication::{SubscriberSpec, subscription_name};
use crate::synclog::{self, WorkerError};

/// Failures after which the sync is given up even when the reason is not
/// known to be lasting: the first try and its retry both failed.
const RETRIES: i64 = 2;

/// Waits until `sub`'s subscription finished its initial sync. `created`:
/// the subscription is new, so every error it counted is from this run.
pub(crate) async fn wait_synced(
    replication: &str,
    sub: &SubscriberSpec<'_>,
    created: bool,
    deadline: Instant,
) -> Result<(), Error> {
    let name = subscription_name(replication, &sub.node.name);
    let what = format!("waiting for subscription {name} on {}", sub.node.name);
    let baseline = if created {
        0
    } else {
        error_count(sub.client, &name, &what).await?
    };
    let mut last = String::from("no tables yet");
    while Instant::now() < deadline {
        let row = sub
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r'), count(*),
                        string_agg(r.srrelid::regclass::text || '=' || r.srsubstate::text, ', ')
                 FROM pg_subscription s LEFT JOIN pg_subscription_rel r ON r.srsubid = s.oid
                 WHERE s.subname = $1",
                &[&name],
            )
            .await
            .map_err(|e| sql(&what, e))?;
        let (pending, total): (i64, i64) = (row.get(0), row.get(1));
        if total > 0 && pending == 0 {
            return Ok(());
        }
        last = row.get::<_, Option<String>>(2).unwrap_or(last);
        let failures = error_count(sub.client, &name, &what).await? - baseline;
        if failures > 0 {
            let reason = synclog::last_error(&sub.log, &name);
            let lasting = reason.as_ref().is_some_and(|r| r.lasting_code().is_some());
            if lasting || failures >= RETRIES {
                return Err(failed(sub, &name, reason, &what).await);
            }
        }
        sleep(Duration::from_millis(50)).await;
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

/// Sync and apply failures Postgres 15 counted for the subscription.
async fn error_count(client: &Client, name: &str, what: &str) -> Result<i64, Error> {
    let row = client
        .query_opt(
            "SELECT sync_error_count + apply_error_count FROM pg_stat_subscription_stats WHERE subname = $1",
            &[&name],
        )
        .await
        .map_err(|e| sql(what, e))?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
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
    let code = reason
        .lasting_code()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let detail = reason
        .detail
        .as_deref()
        .map(|d| format!(" {d}"))
        .unwrap_or_default();
    let subject = match &reason.table {
        Some(table) => format!(
            "initial sync of {} failed",
            qualify(sub.client, name, table, what).await
        ),
        None => format!("subscription {name} failed applying changes"),
    };
    Error::new(
        ErrorKind::Sql,
        format!(
            "{node}: {subject}: {}{code}.{detail}\n  what to do: {todo}",
            reason.message
        ),
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
