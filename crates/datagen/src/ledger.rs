//! `prodhome.data_fills`: one row per (table, seed, rows) fill, with how far
//! its committed batches got. Each batch updates it in its own transaction,
//! so a re-run with the same arguments adds nothing twice and an
//! interrupted one resumes where its last commit left off.

use tokio_postgres::Client;

use crate::Error;

const CREATE: &str = "CREATE SCHEMA IF NOT EXISTS prodhome;
    CREATE TABLE IF NOT EXISTS prodhome.data_fills (
      tbl text NOT NULL,
      seed bigint NOT NULL,
      rows bigint NOT NULL,
      start_index bigint NOT NULL,
      done bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (tbl, seed, rows))";

/// Creates the ledger table. Call it on every node of a lab, subscribers
/// first: a `FOR ALL TABLES` publication sends its rows, and a subscriber
/// without the table would stop applying.
pub async fn ensure(client: &Client) -> Result<(), Error> {
    client
        .batch_execute(CREATE)
        .await
        .map_err(|e| Error::sql("creating prodhome.data_fills", e))
}

/// Where a fill starts: the first global row index and the rows done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) start_index: u64,
    pub(crate) done: u64,
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
) -> Result<Entry, Error> {
    let what = format!("recording the fill of {table} in prodhome.data_fills");
    let (seed, rows) = (seed as i64, rows as i64);
    let after: String = numbered
        .iter()
        .map(|(col, lo)| format!(", (SELECT coalesce(max({col})::bigint - {lo} + 1, 0) FROM {sql})"))
        .collect();
    let found = client
        .query_opt(
            "SELECT start_index, done FROM prodhome.data_fills WHERE tbl = $1 AND seed = $2 AND rows = $3",
            &[&table, &seed, &rows],
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
                .query_one(&insert, &[&table, &seed, &rows])
                .await
                .map_err(|e| Error::sql(&what, e))?
        }
    };
    Ok(Entry {
        start_index: row.get::<_, i64>(0) as u64,
        done: row.get::<_, i64>(1) as u64,
    })
}

/// Records `done` rows inside the batch's transaction.
pub(crate) async fn advance(
    client: &Client,
    table: &str,
    seed: u64,
    rows: u64,
    done: u64,
) -> Result<(), Error> {
    client
        .execute(
            "UPDATE prodhome.data_fills SET done = $4 WHERE tbl = $1 AND seed = $2 AND rows = $3",
            &[&table, &(seed as i64), &(rows as i64), &(done as i64)],
        )
        .await
        .map(drop)
        .map_err(|e| Error::sql(format!("recording progress of {table}"), e))
}
