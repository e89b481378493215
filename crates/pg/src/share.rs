//! Tables prodhome itself creates on a publisher (hum's `books`, pgbench's
//! tables) reaching the subscribers of every replication that publishes
//! them: `tables = "all"` (FOR ALL TABLES) publishes every table, a list
//! only the tables it names.
//!
//! The order is what keeps every apply worker alive, and it is why this is
//! two calls around the caller's own create:
//!
//! 1. [`prepare_new_tables`], on every subscriber, before the publisher
//!    has the tables: create them empty (and, when the publisher is about
//!    to drop and recreate its own, drop the subscriber's copy first, in
//!    the same transaction, which also removes it from the subscription).
//!    A subscriber's apply worker fails on a row for a table it does not
//!    have, and a FOR ALL TABLES publication streams rows of a new table
//!    at once; a table that exists but is not (or no longer) part of the
//!    subscription has its rows skipped instead.
//! 2. The caller creates and fills the tables on the publisher.
//! 3. [`Pending::finish`]: on the publisher, grant the replication role
//!    SELECT on them (the initial copy reads them as that role) and add
//!    them back to a list publication that names them (a DROP TABLE
//!    removed them from it); then `ALTER SUBSCRIPTION … REFRESH
//!    PUBLICATION` on each subscriber, which adds the tables and copies
//!    them as the publisher has them now, and wait until each is ready
//!    ('r'), failing as soon as a copy fails, with the reason from the
//!    subscriber's log.
//!
//! So a subscriber's copy ends equal to the publisher's whether the tables
//! were new, kept, or dropped and recreated with new rows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{Instant, sleep};
use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, sql};
use crate::replication::{ident, qualified, subscription_name};
use crate::synclog;
use crate::{NodeSpec, REPLICATION_ROLE, SUPERUSER};

/// One replication as sharing needs it (the lab's `[replication.NAME]`).
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    pub name: &'a str,
    pub publisher: &'a str,
    pub subscribers: &'a [String],
    /// `None`: all tables.
    pub tables: Option<&'a [String]>,
    /// Tables its subscriptions are known to carry, ready (what
    /// `setup_replication` just returned for it): nothing to share for
    /// them unless they are recreated.
    pub carried: &'a [String],
}

/// Tables about to be created on `node`.
#[derive(Debug, Clone, Copy)]
pub struct NewTables<'a> {
    /// The node the tables are created on.
    pub node: &'a str,
    /// Each table with idempotent statements that create it without rows.
    pub tables: &'a [(&'a str, String)],
    /// The node drops and recreates the tables (new rows): subscribers
    /// drop their copies too and copy the new ones.
    pub recreate: bool,
}

/// The subscribers prepared by [`prepare_new_tables`], waiting for the
/// publisher's tables to be shared with them by [`Pending::finish`].
#[must_use = "the subscribers get the tables only once `finish` runs"]
pub struct Pending {
    publisher: Option<NodeSpec>,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    node: String,
    client: Client,
    /// The jsonlog directory; `log` is the text log read when it has none.
    log_dir: PathBuf,
    log: Option<PathBuf>,
    subscriptions: Vec<Subscription>,
}

struct Subscription {
    name: String,
    replication: String,
    /// The publication is a list: tables dropped from it must be put back.
    list: bool,
    tables: Vec<String>,
}

/// Step 1 (see the module's overview): creates `new`'s tables on every
/// subscriber of a replication from `new.node` whose publication includes
/// them. `log_of` gives a node's server log, where a failed copy's reason
/// is read. Nothing to share gives an empty [`Pending`].
pub async fn prepare_new_tables(
    nodes: &[NodeSpec],
    replications: &[Published<'_>],
    new: &NewTables<'_>,
    log_of: impl Fn(&str) -> Option<PathBuf>,
) -> Result<Pending, Error> {
    let wanted = subscriptions(replications, new);
    let spec = |name: &str| {
        nodes.iter().find(|n| n.name == name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Connect,
                format!("sharing tables with {name}: the lab has no node of that name"),
            )
        })
    };
    let mut pending = Pending {
        publisher: None,
        subscribers: Vec::new(),
    };
    if wanted.is_empty() {
        return Ok(pending);
    }
    pending.publisher = Some(spec(new.node)?);
    // Every subscriber at once: a login and one batch each, mostly waiting
    // on its own server.
    let each = wanted.into_iter().map(|(node, subscriptions)| {
        let node_spec = spec(&node);
        let log = log_of(&node);
        async move {
            let node_spec = node_spec?;
            let client = crate::user(&node_spec, SUPERUSER, node_spec.credentials.superuser.expose()).await?;
            let tables: Vec<&str> = new
                .tables
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| subscriptions.iter().any(|s| s.tables.iter().any(|x| x == t)))
                .collect();
            create_copies(&client, &node, new, &tables).await?;
            Ok::<_, Error>(Subscriber {
                log_dir: crate::server_log_dir(&node_spec.data_dir),
                log,
                node,
                client,
                subscriptions,
            })
        }
    });
    pending.subscribers = futures_util::future::try_join_all(each).await?;
    Ok(pending)
}

/// Per subscriber node, the subscriptions that must carry some of `new`'s
/// tables, each with those tables.
fn subscriptions(replications: &[Published<'_>], new: &NewTables<'_>) -> BTreeMap<String, Vec<Subscription>> {
    let mut by_node: BTreeMap<String, Vec<Subscription>> = BTreeMap::new();
    for repl in replications.iter().filter(|r| r.publisher == new.node) {
        let tables: Vec<String> = new
            .tables
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| publishes(repl.tables, t))
            .filter(|t| new.recreate || !same_table_in(repl.carried, t))
            .map(str::to_string)
            .collect();
        if tables.is_empty() {
            continue;
        }
        for sub in repl.subscribers {
            by_node.entry(sub.clone()).or_default().push(Subscription {
                name: subscription_name(repl.name, sub),
                replication: repl.name.to_string(),
                list: repl.tables.is_some(),
                tables: tables.clone(),
            });
        }
    }
    by_node
}

/// Whether a publication of `tables` (`None`: all) carries `table`.
fn publishes(tables: Option<&[String]>, table: &str) -> bool {
    tables.is_none_or(|list| same_table_in(list, table))
}

/// Whether `list` names `table`; either may name it `public.t` or `t`.
fn same_table_in(list: &[String], table: &str) -> bool {
    let bare = |t: &str| t.strip_prefix("public.").unwrap_or(t).to_string();
    list.iter().any(|t| bare(t) == bare(table))
}

/// Creates the subscriber's empty copies in one transaction, dropping old
/// ones first when the publisher recreates its tables: between the drop
/// and the create, the apply worker would meet a missing table.
async fn create_copies(
    client: &Client,
    node: &str,
    new: &NewTables<'_>,
    tables: &[&str],
) -> Result<(), Error> {
    let mut script = String::from("BEGIN;\n");
    if new.recreate {
        let list: Vec<String> = tables.iter().map(|t| qualified(t)).collect();
        script.push_str(&format!("DROP TABLE IF EXISTS {};\n", list.join(", ")));
    }
    for (table, ddl) in new.tables.iter().filter(|(t, _)| tables.contains(t)) {
        script.push_str(&format!("-- {table}\n{ddl};\n"));
    }
    script.push_str("COMMIT;");
    let what = format!(
        "creating {} on subscriber {node} before {} creates {}",
        tables.join(", "),
        new.node,
        if tables.len() == 1 { "it" } else { "them" }
    );
    if let Err(e) = client.batch_execute(&script).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(sql(&what, e));
    }
    Ok(())
}

impl Pending {
    /// Whether no subscriber needs the tables.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// Step 3 (see the module's overview), once the publisher has the
    /// tables: grants and publication membership on the publisher, then
    /// every subscription refreshed and waited on until each table is
    /// ready, for at most `timeout` in all.
    pub async fn finish(self, timeout: Duration) -> Result<(), Error> {
        let Some(publisher) = &self.publisher else {
            return Ok(());
        };
        let client = crate::user(publisher, SUPERUSER, publisher.credentials.superuser.expose()).await?;
        let all = self.subscribers.iter().flat_map(|s| &s.subscriptions);
        publish(&client, &publisher.name, all).await?;
        let deadline = Instant::now() + timeout;
        // Every subscriber copies at once; then each is waited on.
        let mut started = Vec::new();
        for sub in &self.subscribers {
            for subscription in &sub.subscriptions {
                let errors_before = sync_errors(sub, subscription).await?;
                refresh(sub, subscription).await?;
                started.push((sub, subscription, errors_before));
            }
        }
        for (sub, subscription, errors_before) in started {
            wait_ready(sub, subscription, &publisher.name, errors_before, deadline).await?;
        }
        Ok(())
    }
}

/// Grants the replication role SELECT on the tables and puts them back
/// into list publications that name them.
async fn publish<'a>(
    client: &Client,
    node: &str,
    subscriptions: impl Iterator<Item = &'a Subscription>,
) -> Result<(), Error> {
    let mut done: Vec<(&str, &str)> = Vec::new();
    for s in subscriptions {
        for table in &s.tables {
            if done.contains(&(s.replication.as_str(), table.as_str())) {
                continue;
            }
            done.push((&s.replication, table));
            let what = format!("publishing {table} on {node} for replication {}", s.replication);
            let row = client
                .query_one(
                    "SELECT to_regclass($1) IS NOT NULL,
                            EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                                    WHERE p.pubname = $2 AND pr.prrelid = to_regclass($1))",
                    &[&qualified(table), &s.replication],
                )
                .await
                .map_err(|e| sql(&what, e))?;
            let (exists, listed): (bool, bool) = (row.get(0), row.get(1));
            if !exists {
                return Err(Error::new(
                    ErrorKind::Sql,
                    format!("{what}: {node} has no table {table}; it should have been created just now"),
                ));
            }
            let mut stmt = format!("GRANT SELECT ON {} TO {REPLICATION_ROLE};", qualified(table));
            if s.list && !listed {
                stmt.push_str(&format!(
                    "ALTER PUBLICATION {} ADD TABLE {};",
                    ident(&s.replication),
                    qualified(table)
                ));
            }
            client.batch_execute(&stmt).await.map_err(|e| sql(&what, e))?;
        }
    }
    Ok(())
}

/// Refreshes the subscription unless it already carries every table (a
/// re-run of `up`, tables that were there before).
async fn refresh(sub: &Subscriber, s: &Subscription) -> Result<(), Error> {
    let what = format!("refreshing subscription {} on {}", s.name, sub.node);
    let known: i64 = sub
        .client
        .query_one(
            "SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
             WHERE s.subname = $1 AND r.srrelid = ANY (SELECT to_regclass(t) FROM unnest($2::text[]) t)",
            &[&s.name, &quoted(&s.tables)],
        )
        .await
        .map_err(|e| sql(&what, e))?
        .get(0);
    if known == s.tables.len() as i64 {
        return Ok(());
    }
    // REFRESH PUBLICATION cannot run inside a transaction block: a
    // statement of its own.
    let stmt = format!("ALTER SUBSCRIPTION {} REFRESH PUBLICATION", ident(&s.name));
    sub.client.batch_execute(&stmt).await.map_err(|e| sql(&what, e))
}

/// The subscription's failed table copies so far (PostgreSQL 15 counts
/// them; the message is only in the subscriber's log).
async fn sync_errors(sub: &Subscriber, s: &Subscription) -> Result<i64, Error> {
    let row = sub
        .client
        .query_opt(
            "SELECT sync_error_count FROM pg_stat_subscription_stats WHERE subname = $1",
            &[&s.name],
        )
        .await
        .map_err(|e| {
            sql(
                &format!(
                    "reading the statistics of subscription {} on {}",
                    s.name, sub.node
                ),
                e,
            )
        })?;
    Ok(row.map_or(0, |r| r.get(0)))
}

async fn wait_ready(
    sub: &Subscriber,
    s: &Subscription,
    publisher: &str,
    errors_before: i64,
    deadline: Instant,
) -> Result<(), Error> {
    let what = format!("waiting for subscription {} on {}", s.name, sub.node);
    loop {
        let rows = sub
            .client
            .query(
                "SELECT t.name, coalesce(r.srsubstate::text, 'missing')
                 FROM unnest($2::text[], $3::text[]) AS t(name, reg)
                 LEFT JOIN pg_subscription s ON s.subname = $1
                 LEFT JOIN pg_subscription_rel r ON r.srsubid = s.oid AND r.srrelid = to_regclass(t.reg)
                 ORDER BY 1",
                &[&s.name, &s.tables, &quoted(&s.tables)],
            )
            .await
            .map_err(|e| sql(&what, e))?;
        let waiting: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .filter(|(_, state): &(String, String)| state != "r")
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let tables: Vec<&str> = waiting.iter().map(|(t, _)| t.as_str()).collect();
        if sync_errors(sub, s).await? > errors_before {
            // The same reading of the log as `up`'s wait for the first sync.
            let text_log = sub.log.clone().unwrap_or_default();
            let reason = synclog::last_worker_error(&sub.log_dir, &text_log, &s.name)
                .map(|e| e.summary())
                .unwrap_or_else(|| "the reason is in its server log".into());
            return Err(Error::new(
                ErrorKind::Sql,
                format!(
                    "subscriber {} could not copy {} from {publisher} (subscription {}): {reason}. \
                     Look at `prodhome logs {}`; fix the table on either side and run the command again",
                    sub.node,
                    tables.join(", "),
                    s.name,
                    sub.node
                ),
            ));
        }
        if Instant::now() >= deadline {
            let states: Vec<String> = waiting.iter().map(|(t, st)| format!("{t}={st}")).collect();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "subscriber {} did not finish copying {} from {publisher} in time (subscription {}, \
                     states: {}; 'r' is ready, 'd' copying, 'i' waiting). Look at `prodhome logs {}`",
                    sub.node,
                    tables.join(", "),
                    s.name,
                    states.join(", "),
                    sub.node
                ),
            ));
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// The tables as regclass input (quoted identifiers).
fn quoted(tables: &[String]) -> Vec<String> {
    tables.iter().map(|t| qualified(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_publishes_only_what_it_names_with_or_without_public() {
        let list = ["public.books".to_string(), "orders".to_string()];
        assert!(publishes(None, "pgbench_accounts"));
        assert!(publishes(Some(&list), "books"));
        assert!(!publishes(Some(&list), "pgbench_accounts"));
        assert!(publishes(Some(&["books".to_string()]), "public.books"));
    }

    #[test]
    fn subscriptions_come_from_replications_of_the_creating_node_only() {
        let subs = ["replica_a".to_string(), "replica_b".to_string()];
        let other = ["replica_b".to_string()];
        let list = ["orders".to_string()];
        let replications = [
            Published {
                name: "everything",
                publisher: "main",
                subscribers: &subs,
                tables: None,
                carried: &[],
            },
            Published {
                name: "orders",
                publisher: "main",
                subscribers: &other,
                tables: Some(&list),
                carried: &[],
            },
            Published {
                name: "elsewhere",
                publisher: "replica_a",
                subscribers: &other,
                tables: None,
                carried: &[],
            },
        ];
        let tables = [("books", "create table if not exists books (id int)".to_string())];
        let new = NewTables {
            node: "main",
            tables: &tables,
            recreate: false,
        };
        let by_node = subscriptions(&replications, &new);
        let names: Vec<(&str, Vec<&str>)> = by_node
            .iter()
            .map(|(n, s)| (n.as_str(), s.iter().map(|s| s.name.as_str()).collect()))
            .collect();
        assert_eq!(
            names,
            [
                ("replica_a", vec!["everything_replica_a"]),
                ("replica_b", vec!["everything_replica_b"])
            ]
        );
    }

    #[test]
    fn tables_a_subscription_carries_are_shared_again_only_when_recreated() {
        let subs = ["replica".to_string()];
        let carried = ["public.books".to_string(), "public.probe".to_string()];
        let replications = [Published {
            name: "shop",
            publisher: "main",
            subscribers: &subs,
            tables: None,
            carried: &carried,
        }];
        let tables = [
            ("books", "create table if not exists books (id int)".to_string()),
            ("orders", "create table if not exists orders (id int)".to_string()),
        ];
        let mut new = NewTables {
            node: "main",
            tables: &tables[..1],
            recreate: false,
        };
        assert!(
            subscriptions(&replications, &new).is_empty(),
            "books is carried already"
        );
        new.tables = &tables;
        let by_node = subscriptions(&replications, &new);
        assert_eq!(by_node["replica"][0].tables, ["orders"], "only the new table");
        new.recreate = true;
        let by_node = subscriptions(&replications, &new);
        assert_eq!(
            by_node["replica"][0].tables,
            ["books", "orders"],
            "recreated: both copied again"
        );
    }
}
