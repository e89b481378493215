//! Logical replication: schema, publication, one subscription per
//! subscriber, and the wait for the initial sync. Every step checks what is
//! already there first, so re-running `up` creates nothing twice.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;

use crate::error::{Error, sql};
use crate::initial::{self, PublishedTable};
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
/// Returns the tables every subscriber now has in its subscription, ready
/// (`schema.table`, quoted as needed): the publication's tables, or none
/// when someone else makes the subscriptions.
pub async fn setup_replication(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    sync_timeout: Duration,
) -> Result<Vec<String>, Error> {
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
    if !spec.made_elsewhere {
        ensure_publication(spec, publisher).await?;
    }
    let what = format!(
        "reading what publication {} on {} holds",
        spec.name, spec.publisher.name
    );
    let tables = initial::published(publisher, spec.name, &what).await?;
    grant_published(spec, publisher, &tables).await?;
    let (created, carried) = if spec.made_elsewhere {
        let each = spec.subscribers.iter().map(|sub| refresh_subscription(spec, sub));
        futures_util::future::try_join_all(each).await?;
        (vec![false; spec.subscribers.len()], Vec::new())
    } else {
        let created = subscribe(spec, publisher, &tables, &what).await?;
        (created, tables.into_iter().map(|t| t.table).collect())
    };
    let deadline = Instant::now() + sync_timeout;
    for (sub, created) in spec.subscribers.iter().zip(created) {
        sync::wait_synced(spec.name, publisher, sub, created, deadline).await?;
    }
    Ok(carried)
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
    Ok(())
}

/// The replication role copies the initial data, so it needs SELECT on
/// exactly the published `tables`, and nothing more.
async fn grant_published(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    tables: &[PublishedTable],
) -> Result<(), Error> {
    let what = format!(
        "granting {REPLICATION_ROLE} the tables of publication {} on {}",
        spec.name, spec.publisher.name
    );
    let grants: String = tables
        .iter()
        .map(|t| {
            format!(
                "GRANT USAGE ON SCHEMA {} TO {REPLICATION_ROLE}; GRANT SELECT ON {} TO {REPLICATION_ROLE};",
                t.schema, t.table
            )
        })
        .collect();
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

/// Makes every subscription that is not there yet, or brings an existing
/// one up to date (see [`ensure_subscription`]); which of them are new.
/// The initial copy is left out when the published `tables` are empty,
/// before and after the subscriptions' slots exist (see [`crate::initial`]).
async fn subscribe(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    tables: &[PublishedTable],
    what: &str,
) -> Result<Vec<bool>, Error> {
    let copy = !initial::empty(publisher, tables, what).await?;
    let each = spec
        .subscribers
        .iter()
        .map(|sub| ensure_subscription(spec, publisher, sub, tables, copy));
    let created = futures_util::future::try_join_all(each).await?;
    if copy || !created.contains(&true) || initial::empty(publisher, tables, what).await? {
        return Ok(created);
    }
    // Rows committed while the slots were made: a slot streams only what
    // commits after its consistent point, so the new subscriptions start
    // again, with the copy.
    for (sub, _) in spec.subscribers.iter().zip(&created).filter(|(_, new)| **new) {
        let name = subscription_name(spec.name, &sub.node.name);
        let what = format!(
            "making subscription {name} on {} again, with the initial copy",
            sub.node.name
        );
        sub.client
            .batch_execute(&format!("DROP SUBSCRIPTION {}", ident(&name)))
            .await
            .map_err(|e| sql(&what, e))?;
        ensure_subscription(spec, publisher, sub, tables, true).await?;
    }
    Ok(created)
}

/// Makes `sub`'s subscription (copying the published `tables` first when
/// `copy`; without, the subscriber is checked to have their columns, which
/// the copy would have checked), or, when it exists, follows the publisher
/// to a new address and takes in tables added to the publication since
/// (a lab file's list that grew). Whether it was made now.
async fn ensure_subscription(
    spec: &ReplicationSpec<'_>,
    publisher: &Client,
    sub: &SubscriberSpec<'_>,
    tables: &[PublishedTable],
    copy: bool,
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
    if let Some(current) = existing {
        // The publisher moved (a new port for its link): follow it.
        if current != conninfo {
            let stmt = format!("ALTER SUBSCRIPTION {} CONNECTION '{quoted}'", ident(&name));
            sub.client.batch_execute(&stmt).await.map_err(|e| sql(&what, e))?;
        }
        refresh_if_changed(sub, &name, tables, &what).await?;
        return Ok(false);
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
    let with = if copy {
        ""
    } else {
        initial::check_columns(sub.client, &sub.node.name, &spec.publisher.name, tables).await?;
        " WITH (copy_data = false)"
    };
    // CREATE SUBSCRIPTION cannot run inside a transaction block, so it is a
    // statement of its own.
    let stmt = format!(
        "CREATE SUBSCRIPTION {} CONNECTION '{quoted}' PUBLICATION {}{with}",
        ident(&name),
        ident(spec.name)
    );
    sub.client
        .batch_execute(&stmt)
        .await
        .map(|()| true)
        .map_err(|e| sql(&what, e))
}

/// `ALTER SUBSCRIPTION … REFRESH PUBLICATION` when the subscription's
/// tables are not the publication's `tables`: the new ones are copied (and
/// waited for like a first sync), the dropped ones left alone.
async fn refresh_if_changed(
    sub: &SubscriberSpec<'_>,
    name: &str,
    tables: &[PublishedTable],
    what: &str,
) -> Result<(), Error> {
    let rows = sub
        .client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid
             JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE s.subname = $1",
            &[&name],
        )
        .await
        .map_err(|e| sql(what, e))?;
    let mut carried: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut published: Vec<&str> = tables.iter().map(|t| t.table.as_str()).collect();
    carried.sort();
    published.sort();
    if carried.iter().map(String::as_str).eq(published) {
        return Ok(());
    }
    let stmt = format!("ALTER SUBSCRIPTION {} REFRESH PUBLICATION", ident(name));
    sub.client.batch_execute(&stmt).await.map_err(|e| sql(what, e))
}

/// Quotes an identifier for SQL.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `table` or `schema.table`.
pub(crate) fn qualified(table: &str) -> String {
    table.split('.').map(ident).collect::<Vec<_>>().join(".")
}
