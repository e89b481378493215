//! Logical replication: schema, publication, one subscription per
//! subscriber, and the wait for the initial sync. Every step checks what is
//! already there first, so re-running `up` creates nothing twice.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::{Instant, sleep};
use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, sql};
use crate::{DATABASE, NodeSpec, REPLICATION_ROLE};

/// One replication as this crate needs it.
pub struct ReplicationSpec<'a> {
    pub name: &'a str,
    pub publisher: &'a NodeSpec,
    pub subscribers: Vec<SubscriberSpec<'a>>,
    pub schema_sql: Option<&'a str>,
    /// `None` means all tables.
    pub tables: Option<&'a [String]>,
}

pub struct SubscriberSpec<'a> {
    pub node: &'a NodeSpec,
    pub client: &'a Client,
    /// The port on 127.0.0.1 this subscriber reaches the publisher at (its
    /// proxy link, so that link faults act on replication).
    pub publisher_port: u16,
}

/// The subscription (and publisher-side slot) name for one subscriber.
pub fn subscription_name(replication: &str, subscriber: &str) -> String {
    format!("{replication}_{subscriber}")
}

/// Sets the replication up and waits until every subscription finished its
/// initial table sync, or `sync_timeout` passes.
pub async fn setup_replication(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    sync_timeout: Duration,
) -> Result<(), Error> {
    if let Some(schema) = spec.schema_sql {
        apply_schema(publisher, &spec.publisher.name, spec.name, schema).await?;
        for sub in &spec.subscribers {
            apply_schema(sub.client, &sub.node.name, spec.name, schema).await?;
        }
    }
    ensure_publication(spec, publisher).await?;
    for sub in &spec.subscribers {
        ensure_subscription(spec, publisher, sub).await?;
    }
    let deadline = Instant::now() + sync_timeout;
    for sub in &spec.subscribers {
        wait_synced(spec.name, sub, deadline).await?;
    }
    Ok(())
}

/// Applies the schema once per node, recording its hash in the same
/// transaction, so a re-run skips it and a changed schema is caught.
async fn apply_schema(client: &Client, node: &str, replication: &str, schema: &str) -> Result<(), Error> {
    let sha = hex(&Sha256::digest(schema.as_bytes()));
    let what = format!("applying the schema of replication {replication} to {node}");
    let row = client
        .query_opt(
            "SELECT sha256, at::text FROM prodhome.applied WHERE node = $1 AND replication = $2",
            &[&node, &replication],
        )
        .await
        .map_err(|e| sql(&what, e))?;
    if let Some(row) = row {
        let (applied, at): (String, String) = (row.get(0), row.get(1));
        if applied == sha {
            return Ok(());
        }
        return Err(Error::new(
            ErrorKind::Sql,
            format!(
                "the schema of replication {replication} changed since it was applied to {node} at {at}. \
                 prodhome does not migrate: apply the change by hand (prodhome psql {node}) and restore the file, \
                 or rebuild the lab with `prodhome down --purge` then `prodhome up`"
            ),
        ));
    }
    client.batch_execute("BEGIN").await.map_err(|e| sql(&what, e))?;
    let result = async {
        client.batch_execute(schema).await?;
        client
            .execute(
                "INSERT INTO prodhome.applied (node, replication, sha256) VALUES ($1, $2, $3)",
                &[&node, &replication, &sha],
            )
            .await?;
        client.batch_execute("COMMIT").await
    }
    .await;
    if let Err(e) = result {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(sql(&what, e));
    }
    Ok(())
}

async fn ensure_publication(spec: &ReplicationSpec<'_>, publisher: &Client) -> Result<(), Error> {
    let what = format!("creating publication {} on {}", spec.name, spec.publisher.name);
    let exists = publisher
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&spec.name])
        .await
        .map_err(|e| sql(&what, e))?
        .is_some();
    let name = ident(spec.name);
    let stmt = match (spec.tables, exists) {
        (None, false) => format!("CREATE PUBLICATION {name} FOR ALL TABLES"),
        (None, true) => String::new(),
        (Some(tables), exists) => {
            let mut list: Vec<String> = tables.iter().map(|t| qualified(t)).collect();
            list.push("prodhome.probe".into());
            let verb = if exists {
                "ALTER PUBLICATION {name} SET TABLE"
            } else {
                "CREATE PUBLICATION {name} FOR TABLE"
            };
            format!("{} {}", verb.replace("{name}", &name), list.join(", "))
        }
    };
    if !stmt.is_empty() {
        publisher.batch_execute(&stmt).await.map_err(|e| sql(&what, e))?;
    }
    // The replication role copies the initial data, so it needs SELECT on
    // exactly the published tables, and nothing more.
    let rows = publisher
        .query(
            "SELECT format('%I.%I', schemaname, tablename), quote_ident(schemaname) FROM pg_publication_tables WHERE pubname = $1",
            &[&spec.name],
        )
        .await
        .map_err(|e| sql(&what, e))?;
    let mut grants = String::new();
    for row in rows {
        let (table, schema): (String, String) = (row.get(0), row.get(1));
        grants.push_str(&format!(
            "GRANT USAGE ON SCHEMA {schema} TO {REPLICATION_ROLE}; GRANT SELECT ON {table} TO {REPLICATION_ROLE};"
        ));
    }
    publisher.batch_execute(&grants).await.map_err(|e| sql(&what, e))
}

async fn ensure_subscription(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    sub: &SubscriberSpec<'_>,
) -> Result<(), Error> {
    let name = subscription_name(spec.name, &sub.node.name);
    let what = format!("creating subscription {name} on {}", sub.node.name);
    let port = sub.publisher_port;
    let password = spec.publisher.credentials.replication.expose();
    let conninfo = format!(
        "host=127.0.0.1 port={port} dbname={DATABASE} user={REPLICATION_ROLE} password={password} application_name={name}"
    );
    // The connection string holds a password: keep the statements that
    // carry it out of the server log, even when they fail.
    sub.client
        .batch_execute("SET log_statement = 'none'; SET log_min_error_statement = panic")
        .await
        .map_err(|e| sql(&what, e))?;
    let existing: Option<String> = sub
        .client
        .query_opt(
            "SELECT subconninfo FROM pg_subscription WHERE subname = $1",
            &[&name],
        )
        .await
        .map_err(|e| sql(&what, e))?
        .map(|row| row.get(0));
    let quoted = conninfo.replace('\'', "''");
    match existing {
        Some(current) if current == conninfo => return Ok(()),
        // The publisher moved (a new port for its link): follow it.
        Some(_) => {
            let stmt = format!("ALTER SUBSCRIPTION {} CONNECTION '{quoted}'", ident(&name));
            return sub.client.batch_execute(&stmt).await.map_err(|e| sql(&what, e));
        }
        None => {}
    }
    // A slot without its subscription is left over from a CREATE SUBSCRIPTION
    // that was interrupted after the slot was made: drop it and start over.
    publisher
        .execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
            &[&name],
        )
        .await
        .map_err(|e| sql(&what, e))?;
    // CREATE SUBSCRIPTION cannot run inside a transaction block, so it is a
    // statement of its own.
    let stmt = format!(
        "CREATE SUBSCRIPTION {} CONNECTION '{quoted}' PUBLICATION {}",
        ident(&name),
        ident(spec.name)
    );
    sub.client.batch_execute(&stmt).await.map_err(|e| sql(&what, e))
}

async fn wait_synced(replication: &str, sub: &SubscriberSpec<'_>, deadline: Instant) -> Result<(), Error> {
    let name = subscription_name(replication, &sub.node.name);
    let what = format!("waiting for subscription {name} on {}", sub.node.name);
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

/// Quotes an identifier for SQL.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `table` or `schema.table`.
pub(crate) fn qualified(table: &str) -> String {
    table.split('.').map(ident).collect::<Vec<_>>().join(".")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
