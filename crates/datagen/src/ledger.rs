//! `prodhome.data_fills`: one row per (table, seed, rows) fill, and
//! `prodhome.data_fill_batches`: one row per batch of it committed. A batch
//! records itself in its own transaction, so a re-run with the same
//! arguments adds nothing twice and an interrupted one writes only the
//! batches that never committed — whatever order the parallel streams
//! committed them in.
//!
//! `prodhome.data_fill_keys` holds the keys a load dropped and has not
//! built again (see `keys`).
//!
//! `data_fills.done` is the rows known done as a prefix: a finished fill
//! sets it to `rows`; a ledger from before per-batch progress has it at the
//! last batch committed, and every batch below it counts as done.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::Error;

const CREATE: &str = "CREATE SCHEMA IF NOT EXISTS prodhome;
    CREATE TABLE IF NOT EXISTS prodhome.data_fills (
      tbl text NOT NULL,
      seed bigint NOT NULL,
      rows bigint NOT NULL,
      start_index bigint NOT NULL,
      done bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (tbl, seed, rows));
    CREATE TABLE IF NOT EXISTS prodhome.data_fill_batches (
      tbl text NOT NULL,
      seed bigint NOT NULL,
      rows bigint NOT NULL,
      batch bigint NOT NULL,
      PRIMARY KEY (tbl, seed, rows, batch));
    CREATE TABLE IF NOT EXISTS prodhome.data_fill_keys (
      tbl text NOT NULL,
      name text NOT NULL,
      ord int NOT NULL,
      create_sql text NOT NULL,
      PRIMARY KEY (tbl, name))";

/// Creates the ledger tables. Call it on every node of a lab, subscribers
/// first: a `FOR ALL TABLES` publication sends their rows, and a subscriber
/// without the tables would stop applying.
pub async fn ensure(client: &Client) -> Result<(), Error> {
    client
        .batch_execute(CREATE)
        .await
        .map_err(|e| Error::sql("creating prodhome.data_fills", e))
}

/// Where a fill starts: the first global row index, and which batches of
/// `batch` rows are still to write.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) start_index: u64,
    /// Rows committed by earlier runs.
    pub(crate) done: u64,
    /// Batch numbers not yet committed, in order.
    pub(crate) pending: Vec<u64>,
}

/// The fill's entry, created when new. A new fill numbers its rows after
/// every earlier fill of the table and after the rows already there (and
/// past the largest value of each numbered column, given as `(column, lo)`),
/// so unique columns never repeat a value.
pub(crate) async fn begin(
    client: &Client,
    table: &str,
    sql: &str,
    numbered: &[(String, i64)],
    seed: u64,
    rows: u64,
    batch: u64,
) -> Result<Entry, Error> {
    let what = format!("recording the fill of {table} in prodhome.data_fills");
    let (seed_i, rows_i) = (seed as i64, rows as i64);
    let after: String = numbered
        .iter()
        .map(|(col, lo)| format!(", (SELECT coalesce(max({col})::bigint - {lo} + 1, 0) FROM {sql})"))
        .collect();
    let found = client
        .query_opt(
            "SELECT start_index, done FROM prodhome.data_fills WHERE tbl = $1 AND seed = $2 AND rows = $3",
            &[&table, &seed_i, &rows_i],
        )
        .await
        .map_err(|e| Error::sql(&what, e))?;
    let row = match found {
        Some(r) => r,
        None => {
            let insert = format!(
                "INSERT INTO prodhome.data_fills (tbl, seed, rows, start_index)
                 SELECT $1, $2, $3, greatest(
                   (SELECT coalesce(sum(rows), 0) FROM prodhome.data_fills WHERE tbl = $1),
                   (SELECT count(*) FROM {sql}){after})
                 RETURNING start_index, done"
            );
            client
                .query_one(&insert, &[&table, &seed_i, &rows_i])
                .await
                .map_err(|e| Error::sql(&what, e))?
        }
    };
    let prefix = row.get::<_, i64>(1) as u64;
    let committed: BTreeSet<u64> = client
        .query(
            "SELECT batch FROM prodhome.data_fill_batches WHERE tbl = $1 AND seed = $2 AND rows = $3",
            &[&table, &seed_i, &rows_i],
        )
        .await
        .map_err(|e| Error::sql(&what, e))?
        .iter()
        .map(|r| r.get::<_, i64>(0) as u64)
        .collect();
    let pending: Vec<u64> = (0..rows.div_ceil(batch))
        .filter(|b| b * batch >= prefix && !committed.contains(b))
        .collect();
    let left: u64 = pending
        .iter()
        .map(|b| ((b + 1) * batch).min(rows) - b * batch)
        .sum();
    Ok(Entry {
        start_index: row.get::<_, i64>(0) as u64,
        done: rows - left,
        pending,
    })
}

/// Records batch `batch` as committed, inside the batch's transaction.
pub(crate) async fn advance(
    client: &Client,
    table: &str,
    seed: u64,
    rows: u64,
    batch: u64,
) -> Result<(), Error> {
    client
        .execute(
            "INSERT INTO prodhome.data_fill_batches (tbl, seed, rows, batch) VALUES ($1, $2, $3, $4)",
            &[&table, &(seed as i64), &(rows as i64), &(batch as i64)],
        )
        .await
        .map(drop)
        .map_err(|e| Error::sql(format!("recording progress of {table}"), e))
}

/// Marks the whole fill done (once every batch has committed), so a reader
/// of `data_fills` sees it without counting batches.
pub(crate) async fn finish(client: &Client, table: &str, seed: u64, rows: u64) -> Result<(), Error> {
    client
        .execute(
            "UPDATE prodhome.data_fills SET done = rows WHERE tbl = $1 AND seed = $2 AND rows = $3",
            &[&table, &(seed as i64), &(rows as i64)],
        )
        .await
        .map(drop)
        .map_err(|e| Error::sql(format!("recording the end of the fill of {table}"), e))
}
