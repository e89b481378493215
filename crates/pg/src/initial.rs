//! A new subscription's initial copy, and when there is nothing to copy.
//!
//! `CREATE SUBSCRIPTION` copies every published table (a table sync worker
//! each: a walsender session, a temporary slot, a COPY, a catch-up with the
//! apply worker), which on a fresh lab is most of `up`'s replication setup
//! (0.15–0.23 s for two empty tables, here) for no rows at all. When every
//! published table is empty, `copy_data = false` is the same subscription
//! without that work: its slot starts streaming at its consistent point
//! and every row committed after it reaches the subscriber.
//!
//! Why that is safe, in the order [`crate::replication`] runs it, over the
//! tables and columns [`published`] lists:
//! 1. [`empty`] is asked first: a table with rows (a schema file's INSERT
//!    or COPY, a lab that ran before) is copied as usual.
//! 2. Without a copy, [`check_columns`] checks that each subscriber has
//!    every published column: the copy is where Postgres would have said
//!    one is missing (else the first row would stop the apply worker).
//! 3. The subscriptions are made without a copy, then [`empty`] is asked
//!    again. Empty *after* every slot's consistent point is what makes the
//!    copy unneeded: a row committed before that point and still there
//!    would show; one deleted since is on neither side; everything
//!    committed after it streams. Rows that slipped in between the two
//!    questions (someone else writing during `up`) make the caller drop
//!    those subscriptions and make them again with the copy.

use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, sql};

/// One table of a publication: `schema.table` and its schema, quoted, and
/// the columns the publisher sends (`pg_publication_tables` lists
/// generated columns too, but Postgres 15 does not send them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishedTable {
    pub(crate) table: String,
    pub(crate) schema: String,
    pub(crate) columns: Vec<String>,
}

/// The tables and columns publication `name` sends, as the publisher sees
/// them now.
pub(crate) async fn published(
    publisher: &Client,
    name: &str,
    what: &str,
) -> Result<Vec<PublishedTable>, Error> {
    let rows = publisher
        .query(
            "SELECT format('%I.%I', t.schemaname, t.tablename), quote_ident(t.schemaname),
                    coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                              WHERE a.attrelid = format('%I.%I', t.schemaname, t.tablename)::regclass
                                AND a.attname = ANY (t.attnames) AND a.attgenerated = ''), '{}')
             FROM pg_publication_tables t WHERE t.pubname = $1 ORDER BY 1",
            &[&name],
        )
        .await
        .map_err(|e| sql(what, e))?;
    Ok(rows
        .iter()
        .map(|r| PublishedTable {
            table: r.get(0),
            schema: r.get(1),
            columns: r.get(2),
        })
        .collect())
}

/// Whether every table is empty, read in one statement (one snapshot).
pub(crate) async fn empty(publisher: &Client, tables: &[PublishedTable], what: &str) -> Result<bool, Error> {
    if tables.is_empty() {
        return Ok(true);
    }
    let probes: Vec<String> = tables
        .iter()
        .map(|t| format!("NOT EXISTS (SELECT FROM {})", t.table))
        .collect();
    let row = publisher
        .query_one(&format!("SELECT {}", probes.join(" AND ")), &[])
        .await
        .map_err(|e| sql(what, e))?;
    Ok(row.get(0))
}

/// Fails, naming each, when `subscriber` lacks a published table or one of
/// its columns (or has it only as a generated column, which Postgres does
/// not replicate into): the subscription would stop at its first row.
pub(crate) async fn check_columns(
    subscriber: &Client,
    node: &str,
    publisher: &str,
    tables: &[PublishedTable],
) -> Result<(), Error> {
    let (mut names, mut columns) = (Vec::new(), Vec::new());
    for t in tables {
        for c in &t.columns {
            names.push(t.table.as_str());
            columns.push(c.as_str());
        }
    }
    let what = format!("comparing {node}'s tables with what {publisher} publishes");
    let rows = subscriber
        .query(
            "SELECT p.tbl, to_regclass(p.tbl) IS NOT NULL, string_agg(quote_ident(p.col), ', ' ORDER BY p.n)
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(tbl, col, n)
             WHERE NOT EXISTS (SELECT FROM pg_attribute a
                               WHERE a.attrelid = to_regclass(p.tbl) AND a.attname = p.col
                                 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
             GROUP BY p.tbl ORDER BY p.tbl",
            &[&names, &columns],
        )
        .await
        .map_err(|e| sql(&what, e))?;
    if rows.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = rows
        .iter()
        .map(|r| {
            let (table, exists, missing): (String, bool, String) = (r.get(0), r.get(1), r.get(2));
            if exists {
                format!("{table} has no column {missing}")
            } else {
                format!("there is no table {table}")
            }
        })
        .collect();
    Err(Error::new(
        ErrorKind::Sql,
        format!(
            "{node} cannot take what {publisher} publishes: {}. Replication would stop at the first row. \
             Make the schema file create the same tables and columns on every node (or fix the table on \
             {node} with `prodhome psql {node}`), then run `up` again",
            problems.join("; ")
        ),
    ))
}
