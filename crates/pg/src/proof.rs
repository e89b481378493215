//! The stronger half of verification, for after faults: every acknowledged
//! write is on the publisher, each subscriber has exactly the publisher's
//! keys, and every subscription's slot survived.

use std::collections::BTreeSet;

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, sql};
use crate::replication::qualified;

/// At most this many keys are listed in a report; counts are exact.
const SHOW: usize = 20;

/// Acknowledged writes of one table checked against the publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerCheck {
    pub table: String,
    pub acknowledged: u64,
    /// Acknowledged keys the publisher does not have.
    pub lost: u64,
    pub lost_keys: Vec<String>,
}

/// One subscriber's keys of one table against the publisher's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDiff {
    pub table: String,
    pub node: String,
    pub missing: u64,
    pub missing_keys: Vec<String>,
    pub unexpected: u64,
    pub unexpected_keys: Vec<String>,
}

/// A subscription's slot on its publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotCheck {
    pub slot: String,
    pub exists: bool,
    pub active: bool,
}

/// The primary key column of `table` and its type; tables checked by key
/// need a one-column primary key.
async fn primary_key(client: &Client, table: &str) -> Result<(String, String), Error> {
    let row = client
        .query_opt(
            "SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod)
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary AND i.indnatts = 1",
            &[&qualified(table)],
        )
        .await
        .map_err(|e| sql(&format!("finding the primary key of {table}"), e))?;
    row.map(|r| (r.get(0), r.get(1))).ok_or_else(|| {
        Error::new(
            ErrorKind::Sql,
            format!("{table} has no one-column primary key to check writes by"),
        )
    })
}

/// Which of `keys` (acknowledged writes to `table`) the publisher lacks.
pub async fn check_ledger(publisher: &Client, table: &str, keys: &[String]) -> Result<LedgerCheck, Error> {
    let (pk, ty) = primary_key(publisher, table).await?;
    let query = format!(
        "SELECT k FROM unnest($1::text[]) AS k WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE t.{pk} = k::{ty}) ORDER BY k",
        qualified(table)
    );
    let unique: Vec<String> = keys
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lost: Vec<String> = publisher
        .query(&query, &[&unique])
        .await
        .map_err(|e| sql(&format!("checking acknowledged writes to {table}"), e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(LedgerCheck {
        table: table.into(),
        acknowledged: unique.len() as u64,
        lost: lost.len() as u64,
        lost_keys: lost.into_iter().take(SHOW).collect(),
    })
}

/// The keys of `table` the subscriber lacks or has in excess.
pub async fn key_diff(
    publisher: &Client,
    subscriber: (&str, &Client),
    table: &str,
) -> Result<KeyDiff, Error> {
    let (pk, _) = primary_key(publisher, table).await?;
    let query = format!("SELECT {pk}::text FROM {}", qualified(table));
    let on_publisher = keys(publisher, &query, format!("reading the keys of {table}")).await?;
    let what = format!("reading the keys of {table} on {}", subscriber.0);
    let on_subscriber = keys(subscriber.1, &query, what).await?;
    let missing: Vec<&String> = on_publisher.difference(&on_subscriber).collect();
    let unexpected: Vec<&String> = on_subscriber.difference(&on_publisher).collect();
    Ok(KeyDiff {
        table: table.into(),
        node: subscriber.0.into(),
        missing: missing.len() as u64,
        missing_keys: missing.into_iter().take(SHOW).cloned().collect(),
        unexpected: unexpected.len() as u64,
        unexpected_keys: unexpected.into_iter().take(SHOW).cloned().collect(),
    })
}

/// Whether each of `slots` exists on the publisher and is in use.
pub async fn check_slots(publisher: &Client, slots: &[String]) -> Result<Vec<SlotCheck>, Error> {
    let mut out = Vec::new();
    for slot in slots {
        let row = publisher
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[slot],
            )
            .await
            .map_err(|e| sql("reading replication slots", e))?;
        out.push(SlotCheck {
            slot: slot.clone(),
            exists: row.is_some(),
            active: row.is_some_and(|r| r.get(0)),
        });
    }
    Ok(out)
}

async fn keys(client: &Client, query: &str, what: String) -> Result<BTreeSet<String>, Error> {
    let rows = client.query(query, &[]).await.map_err(|e| sql(&what, e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}
