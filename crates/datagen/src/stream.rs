//! One table's COPY streams. Rows are generated on threads of their own,
//! off the connections' tasks: each stream is a generator thread encoding
//! batches into chunks and a task writing them with COPY, joined by a
//! bounded channel (a full channel blocks the generator, so it never runs
//! more than [`AHEAD`] chunks ahead). Each takes the next pending batch of
//! the table; each batch is one transaction together with its ledger row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_postgres::types::{FromSql, Type as PgType};

use crate::encode::{BINARY_HEADER, BINARY_TRAILER};
use crate::plan::TablePlan;
use crate::rows::{Keys, Layout, Rows, quote};
use crate::{Error, ledger};

/// Rows per batch (and per transaction). Part of the seeding: changing it
/// changes the rows a seed gives.
pub const BATCH: u64 = 20_000;

/// Bytes per chunk sent to COPY.
const CHUNK: usize = 256 * 1024;
/// Chunks a generator may run ahead of its COPY stream.
const AHEAD: usize = 4;
/// Parent keys held for children to draw from.
const MAX_PARENT_KEYS: i64 = 2_000_000;

/// One table's fill, shared by its streams and their generator threads.
pub(crate) struct Job {
    pub(crate) table: TablePlan,
    pub(crate) layout: Layout,
    pub(crate) parents: Vec<Keys>,
    pub(crate) seed: u64,
    pub(crate) start_index: u64,
    pub(crate) pending: Vec<u64>,
    pub(crate) next: AtomicUsize,
    /// Batches committed, by every stream.
    pub(crate) committed: AtomicU64,
}

/// Part of one batch's COPY data; `last` ends the batch.
struct Chunk {
    batch: u64,
    data: Bytes,
    last: bool,
}

impl Job {
    /// The COPY statement: the layout's columns, in its format.
    fn copy(&self) -> String {
        let list: Vec<String> = self.layout.fields.iter().map(|f| quote(&f.name)).collect();
        let format = if self.layout.binary {
            " (FORMAT binary)"
        } else {
            ""
        };
        format!("COPY {} ({}) FROM STDIN{format}", self.table.sql, list.join(", "))
    }

    /// Rows `start..end` of `batch`, within this fill.
    fn bounds(&self, batch: u64) -> (u64, u64) {
        (batch * BATCH, ((batch + 1) * BATCH).min(self.table.rows))
    }

    /// The generator thread: encodes each batch it takes into chunks until
    /// none is left or its stream has gone (an error, an interrupt).
    fn generate(&self, tx: mpsc::Sender<Chunk>) {
        let mut buf = BytesMut::with_capacity(CHUNK + 4096);
        while let Some(&batch) = self.pending.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let (start, end) = self.bounds(batch);
            let mut rows = Rows::new(&self.table, &self.layout, &self.parents, self.seed, batch);
            if self.layout.binary {
                buf.extend_from_slice(BINARY_HEADER);
            }
            for i in start..end {
                rows.write(self.start_index + i, &mut buf);
                if buf.len() >= CHUNK && i + 1 < end {
                    let data = buf.split().freeze();
                    buf.reserve(CHUNK + 4096);
                    if tx
                        .blocking_send(Chunk {
                            batch,
                            data,
                            last: false,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
            if self.layout.binary {
                buf.extend_from_slice(BINARY_TRAILER);
            }
            let data = buf.split().freeze();
            buf.reserve(CHUNK + 4096);
            if tx
                .blocking_send(Chunk {
                    batch,
                    data,
                    last: true,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

/// Runs one stream on `client`: a generator thread and the batches it
/// encodes, each committed with its ledger row. Returns (rows, bytes).
pub(crate) async fn stream(
    job: Arc<Job>,
    client: &Client,
    progress: &TableProgress,
) -> Result<(u64, u64), Error> {
    let (tx, mut rx) = mpsc::channel::<Chunk>(AHEAD);
    let generator = job.clone();
    std::thread::Builder::new()
        .name("datagen".into())
        .spawn(move || generator.generate(tx))
        .map_err(|e| Error::other(format!("starting a generator thread: {e}")))?;
    let copy = job.copy();
    let (mut rows, mut bytes) = (0, 0);
    let mut open = None;
    while let Some(chunk) = rx.recv().await {
        let (start, end) = job.bounds(chunk.batch);
        let what = || format!("writing rows {start}..{end} of {}", job.table.name);
        let sink = match &mut open {
            Some(sink) => sink,
            None => {
                client
                    .batch_execute("BEGIN")
                    .await
                    .map_err(|e| Error::sql(what(), e))?;
                let sink = client
                    .copy_in::<_, Bytes>(&copy)
                    .await
                    .map_err(|e| Error::sql(what(), e))?;
                open.insert(Box::pin(sink))
            }
        };
        let len = chunk.data.len() as u64;
        sink.send(chunk.data).await.map_err(|e| Error::sql(what(), e))?;
        bytes += len;
        progress.bytes.fetch_add(len, Ordering::Relaxed);
        if chunk.last {
            let mut sink = open.take().expect("a batch's COPY is open until its last chunk");
            sink.as_mut().finish().await.map_err(|e| Error::sql(what(), e))?;
            ledger::advance(client, &job.table.name, job.seed, job.table.rows, chunk.batch).await?;
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| Error::sql(what(), e))?;
            rows += end - start;
            progress.done.fetch_add(end - start, Ordering::Relaxed);
            job.committed.fetch_add(1, Ordering::Relaxed);
        }
    }
    if open.is_some() {
        return Err(Error::other(format!(
            "{}: a generator thread stopped in the middle of a batch; that batch was not committed — run the same command again",
            job.table.name
        )));
    }
    Ok((rows, bytes))
}

#[derive(Debug)]
pub struct TableProgress {
    pub name: String,
    pub rows: u64,
    /// Rows committed, including those of an earlier, interrupted run.
    pub done: AtomicU64,
    pub bytes: AtomicU64,
    pub finished: AtomicBool,
}

/// A value's bytes as the server sent them, whatever its type.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &PgType, raw: &'a [u8]) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &PgType) -> bool {
        true
    }
}

/// Each FK's parent keys in key order (so the same parents give the same
/// children), as text or in their binary format, checked to be enough
/// before anything is written. Keys with a NULL are left out: they are
/// referenced by no child.
pub(crate) async fn parent_keys(
    client: &Client,
    table: &TablePlan,
    binary: bool,
    last_index: u64,
) -> Result<Vec<Keys>, Error> {
    let mut out = Vec::new();
    for fk in &table.foreign {
        let cast = if binary { "" } else { "::text" };
        let cols: Vec<String> = fk
            .parent_columns
            .iter()
            .map(|c| format!("p.{}{cast}", quote(c)))
            .collect();
        // `p.`: ORDER BY sorts the columns, not their text output.
        let order: Vec<String> = fk
            .parent_columns
            .iter()
            .map(|c| format!("p.{}", quote(c)))
            .collect();
        let not_null: Vec<String> = order.iter().map(|c| format!("{c} IS NOT NULL")).collect();
        let sql = format!(
            "SELECT {} FROM {} p WHERE {} ORDER BY {} LIMIT {MAX_PARENT_KEYS}",
            cols.join(", "),
            fk.parent_sql,
            not_null.join(" AND "),
            order.join(", ")
        );
        let what = format!(
            "reading the keys of {} for {} ({})",
            fk.parent, table.name, fk.constraint
        );
        let rows = client.query(&sql, &[]).await.map_err(|e| Error::sql(&what, e))?;
        let keys: Keys = rows
            .iter()
            .map(|r| {
                (0..fk.parent_columns.len())
                    .map(|i| r.get::<_, Raw>(i).0)
                    .collect()
            })
            .collect();
        let one_each = table.columns.iter().any(
            |c| matches!(&c.generator, crate::generator::Gen::ForeignUnique { constraint, .. } if *constraint == fk.constraint),
        );
        if keys.is_empty() || (one_each && (keys.len() as u64) < last_index) {
            return Err(Error::other(format!(
                "{}: foreign key {} needs {} rows in {} to reference, which has {}; fill {} first (leave out --table, or add --table {})",
                table.name,
                fk.constraint,
                if one_each { last_index } else { 1 },
                fk.parent,
                keys.len(),
                fk.parent,
                fk.parent
            )));
        }
        out.push(keys);
    }
    Ok(out)
}
