//! Proof that subscribers converged: a probe row written on the publisher
//! must arrive on every subscriber, then every replicated table must have
//! the same row count and the same order-independent checksum on both ends.
//! Only tables are compared: Postgres does not replicate sequences (a
//! subscriber's stay where its schema left them), so their positions are
//! not part of convergence. Each table's schema is compared too (see
//! [`crate::drift`]).

use std::time::Duration;

use serde::Serialize;
use tokio::time::{Instant, sleep};
use tokio_postgres::Client;

use crate::Drift;
use crate::error::{Error, sql};
use crate::replication::qualified;

/// One side's view of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSide {
    pub node: String,
    pub rows: i64,
    /// Sum of a 64-bit hash of every row's text form: equal sets of rows
    /// give equal sums whatever their order.
    pub checksum: String,
    pub matches: bool,
}

/// One table compared across publisher and subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub publisher: TableSide,
    pub subscribers: Vec<TableSide>,
}

/// The outcome for one replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub replication: String,
    pub converged: bool,
    /// Per subscriber: ms until the probe row arrived, or None if it never did.
    pub probe_ms: Vec<(String, Option<u64>)>,
    pub tables: Vec<TableCheck>,
    /// Tables whose schema on a subscriber differs from the publisher's.
    pub drift: Vec<Drift>,
}

/// Verifies one replication within `timeout`.
pub async fn verify(
    replication: &str,
    publisher: (&str, &Client),
    subscribers: &[(&str, &Client)],
    timeout: Duration,
) -> Result<VerifyReport, Error> {
    let start = Instant::now();
    let deadline = start + timeout;
    let (pub_name, pub_client) = publisher;
    let id: i64 = pub_client
        .query_one(
            "INSERT INTO prodhome.probe (replication) VALUES ($1) RETURNING id",
            &[&replication],
        )
        .await
        .map_err(|e| sql(&format!("writing the probe row on {pub_name}"), e))?
        .get(0);
    let mut probe_ms = Vec::new();
    for (name, client) in subscribers {
        let arrived = wait_probe(client, id, deadline).await;
        probe_ms.push((
            name.to_string(),
            arrived.then(|| start.elapsed().as_millis() as u64),
        ));
    }
    let tables: Vec<String> = pub_client
        .query(
            "SELECT format('%s.%s', schemaname, tablename) FROM pg_publication_tables
             WHERE pubname = $1 AND schemaname <> 'prodhome' ORDER BY 1",
            &[&replication],
        )
        .await
        .map_err(|e| sql("listing published tables", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut drift = Vec::new();
    for table in &tables {
        drift.extend(crate::drift::table_drift(table, publisher, subscribers).await?);
    }
    // Writes may still be in flight: compare until equal or out of time.
    loop {
        let mut checks = Vec::new();
        for table in &tables {
            checks.push(compare(table, publisher, subscribers).await?);
        }
        let converged = probe_ms.iter().all(|(_, ms)| ms.is_some())
            && checks.iter().all(|c| c.subscribers.iter().all(|s| s.matches));
        if converged || Instant::now() >= deadline {
            return Ok(VerifyReport {
                replication: replication.into(),
                converged,
                probe_ms,
                tables: checks,
                drift,
            });
        }
        sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_probe(client: &Client, id: i64, deadline: Instant) -> bool {
    loop {
        let seen = client
            .query_opt("SELECT 1 FROM prodhome.probe WHERE id = $1", &[&id])
            .await
            .map(|r| r.is_some())
            .unwrap_or(false);
        if seen {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20)).await;
    }
}

async fn compare(
    table: &str,
    publisher: (&str, &Client),
    subscribers: &[(&str, &Client)],
) -> Result<TableCheck, Error> {
    let want = side(table, publisher.0, publisher.1, None).await?;
    let mut subs = Vec::new();
    for (name, client) in subscribers {
        subs.push(side(table, name, client, Some(&want)).await?);
    }
    Ok(TableCheck {
        table: table.into(),
        publisher: TableSide {
            matches: true,
            ..want
        },
        subscribers: subs,
    })
}

async fn side(
    table: &str,
    node: &str,
    client: &Client,
    want: Option<&TableSide>,
) -> Result<TableSide, Error> {
    let query = format!(
        "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text
         FROM {} t",
        qualified(table)
    );
    let row = client
        .query_one(&query, &[])
        .await
        .map_err(|e| sql(&format!("checksumming {table} on {node}"), e))?;
    let (rows, checksum): (i64, String) = (row.get(0), row.get(1));
    let matches = want.is_none_or(|w| w.rows == rows && w.checksum == checksum);
    Ok(TableSide {
        node: node.into(),
        rows,
        checksum,
        matches,
    })
}
