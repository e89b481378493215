//! Logical replication: schema, publication, one subscription per
//! subscriber, and the wait for the initial sync. Every step checks what is
//! already there first, so re-running `up` creates nothing twice.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;

use crate::error::{Error, sql};
use crate::schema::{self, Role, SchemaSpec};
use crate::sync::{self, SubscriberSpec};
use crate::{DATABASE, NodeSpec, REPLICATION_ROLE};
pub use model::subscription_name;

/// One replication as this crate needs it.
pub struct ReplicationSpec<'a> {
    pub name: &'a str,
    pub publisher: &'a NodeSpec,
    pub subscribers: Vec<SubscriberSpec<'a>>,
    /// The lab's schema file: every statement runs on the publisher, only
    /// the definitions on subscribers (they get the rows by initial sync).
    pub schema: Option<SchemaSpec<'a>>,
    /// `None` means all tables.
    pub tables: Option<&'a [String]>,
    /// The publication and subscriptions are made by someone else (the
    /// CloudNativePG operator, from its `Publication` and `Subscription`
    /// resources): only the schema is applied and the replication role
    /// granted what is published, then the initial sync waited for.
    pub made_elsewhere: bool,
}

/// Sets the replication up and waits until every subscription finished its
/// initial table sync, or one of them fails, or `sync_timeout` passes.
pub async fn setup_replication(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    sync_timeout: Duration,
) -> Result<(), Error> {
    if let Some(file) = &spec.schema {
        let statements = schema::statements(file, spec.name)?;
        // Every node is a server of its own: all at once.
        let on_publisher = schema::apply(
            publisher,
            &spec.publisher.name,
            Role::Publisher,
            spec.name,
            file,
            &statements,
        );
        let on_subscribers = spec.subscribers.iter().map(|sub| {
            schema::apply(
                sub.client,
                &sub.node.name,
                Role::Subscriber,
                spec.name,
                file,
                &statements,
            )
        });
        futures_util::future::try_join(on_publisher, futures_util::future::try_join_all(on_subscribers))
            .await?;
    }
    let created = if spec.made_elsewhere {
        grant_published(spec, publisher).await?;
        let each = spec.subscribers.iter().map(|sub| refresh_subscription(spec, sub));
        futures_util::future::try_join_all(each).await?;
        vec![false; spec.subscribers.len()]
    } else {
        ensure_publication(spec, publisher).await?;
        let each = spec
            .subscribers
            .iter()
            .map(|sub| ensure_subscription(spec, publisher, sub));
        futures_util::future::try_join_all(each).await?
    };
    let deadline = Instant::now() + sync_timeout;
    for (sub, created) in spec.subscribers.iter().zip(created) {
        sync::wait_synced(spec.name, publisher, sub, created, deadline).await?;
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
    grant_published(spec, publisher).await
}

/// The replication role copies the initial data, so it needs SELECT on
/// exactly the published tables, and nothing more.
async fn grant_published(spec: &ReplicationSpec<'_>, publisher: &Client) -> Result<(), Error> {
    let what = format!(
        "granting {REPLICATION_ROLE} the tables of publication {} on {}",
        spec.name, spec.publisher.name
    );
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

/// A subscription someone else made, told about the tables the schema
/// just created (it saw the publication's tables when it was made); one
/// not made yet is waited for, and sees them when it is.
async fn refresh_subscription(spec: &ReplicationSpec<'_>, sub: &SubscriberSpec<'_>) -> Result<(), Error> {
    let name = subscription_name(spec.name, &sub.node.name);
    let what = format!("refreshing subscription {name} on {}", sub.node.name);
    let exists = sub
        .client
        .query_opt("SELECT 1 FROM pg_subscription WHERE subname = $1", &[&name])
        .await
        .map_err(|e| sql(&what, e))?
        .is_some();
    if exists {
        let stmt = format!("ALTER SUBSCRIPTION {} REFRESH PUBLICATION", ident(&name));
        sub.client.batch_execute(&stmt).await.map_err(|e| sql(&what, e))?;
    }
    Ok(())
}

async fn ensure_subscription(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    sub: &SubscriberSpec<'_>,
) -> Result<bool, Error> {
    let name = subscription_name(spec.name, &sub.node.name);
    let what = format!("creating subscription {name} on {}", sub.node.name);
    let (host, port) = (&sub.publisher_host, sub.publisher_port);
    let password = spec.publisher.credentials.replication.expose();
    let conninfo = format!(
        "host={host} port={port} dbname={DATABASE} user={REPLICATION_ROLE} password={password} application_name={name}"
    );
    // The connection string holds a password: keep the statements that
    // carry it out of the server log, even when they fail or are slow.
    sub.client
        .batch_execute(
            "SET log_statement = 'none'; SET log_min_error_statement = panic; SET log_min_duration_statement = -1",
        )
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
        Some(current) if current == conninfo => return Ok(false),
        // The publisher moved (a new port for its link): follow it.
        Some(_) => {
            let stmt = format!("ALTER SUBSCRIPTION {} CONNECTION '{quoted}'", ident(&name));
            return sub
                .client
                .batch_execute(&stmt)
                .await
                .map(|()| false)
                .map_err(|e| sql(&what, e));
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
    sub.client
        .batch_execute(&stmt)
        .await
        .map(|()| true)
        .map_err(|e| sql(&what, e))
}

/// Quotes an identifier for SQL.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `table` or `schema.table`.
pub(crate) fn qualified(table: &str) -> String {
    table.split('.').map(ident).collect::<Vec<_>>().join(".")
}
