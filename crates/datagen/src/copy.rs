//! Streams a [`FillPlan`] into a node: per table, batches of rows written
//! with COPY (text format), each batch its own transaction together with
//! its progress in the ledger; up to [`STREAMS`] connections per FK depth,
//! shared among its tables, each taking the next pending batch of its
//! table, so one big table keeps several backends busy.
//!
//! Text COPY, not binary: the server parses text fast enough that the
//! client's generation, not the format, is the limit (see BENCHMARKS.md,
//! "Synthetic data"), and text keeps every type's output one small function.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use futures_util::future::try_join_all;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_postgres::{Client, Config, NoTls};

use crate::generator::{self, Gen};
use crate::plan::{FillPlan, TablePlan};
use crate::{Error, ledger};

/// Rows per batch (and per transaction). Part of the seeding: changing it
/// changes the rows a seed gives.
pub const BATCH: u64 = 20_000;
const CHUNK: usize = 256 * 1024;
/// COPY streams per FK depth, shared among its tables (each has at least
/// one): one stream keeps one backend busy, and the server, not the client,
/// is the limit (see BENCHMARKS.md, "Synthetic data").
pub const STREAMS: usize = 4;
/// Parent keys held for children to draw from.
const MAX_PARENT_KEYS: i64 = 2_000_000;

#[derive(Debug, Clone, Copy)]
pub struct FillOptions {
    pub seed: u64,
}

/// Live counters the CLI reads for its progress line.
#[derive(Debug)]
pub struct Progress {
    pub tables: Vec<TableProgress>,
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

impl Progress {
    pub fn new(plan: &FillPlan) -> Arc<Progress> {
        Arc::new(Progress {
            tables: plan
                .tables
                .iter()
                .map(|t| TableProgress {
                    name: t.name.clone(),
                    rows: t.rows,
                    done: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    finished: AtomicBool::new(false),
                })
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    /// Rows an earlier run of the same fill had committed.
    pub resumed_from: u64,
    /// Rows this run wrote.
    pub added: u64,
    /// The same fill had already completed: nothing written.
    pub already_filled: bool,
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FillReport {
    pub seed: u64,
    pub tables: Vec<TableReport>,
    pub rows_added: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub mb_per_sec: f64,
}

/// Fills every table of `plan`, parents first. The ledger table must exist
/// ([`ledger::ensure`]).
pub async fn fill(
    config: &Config,
    plan: &FillPlan,
    opts: FillOptions,
    progress: Arc<Progress>,
) -> Result<FillReport, Error> {
    let started = Instant::now();
    let mut reports = Vec::new();
    let depths = plan.tables.iter().map(|t| t.depth).max().map_or(0, |d| d + 1);
    for depth in 0..depths {
        let mut set = JoinSet::new();
        let tables = plan.tables.iter().filter(|t| t.depth == depth).count();
        let streams = (STREAMS / tables.max(1)).max(1);
        for (i, table) in plan.tables.iter().enumerate().filter(|(_, t)| t.depth == depth) {
            let (config, table, progress) = (config.clone(), table.clone(), progress.clone());
            set.spawn(async move { fill_table(&config, &table, opts, &progress.tables[i], streams).await });
        }
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            match joined.map_err(|e| Error::other(format!("a fill task failed: {e}")))? {
                Ok(r) => reports.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows_added = reports.iter().map(|r| r.added).sum();
    let bytes = reports.iter().map(|r| r.bytes).sum();
    reports.sort_by_key(|r| plan.tables.iter().position(|t| t.name == r.table));
    Ok(FillReport {
        seed: opts.seed,
        tables: reports,
        rows_added,
        bytes,
        seconds,
        rows_per_sec: rows_added as f64 / seconds.max(1e-6),
        mb_per_sec: bytes as f64 / 1e6 / seconds.max(1e-6),
    })
}

async fn connect(config: &Config) -> Result<Client, Error> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::sql("connecting to the node", e))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn fill_table(
    config: &Config,
    table: &TablePlan,
    opts: FillOptions,
    progress: &TableProgress,
    streams: usize,
) -> Result<TableReport, Error> {
    let started = Instant::now();
    let client = connect(config).await?;
    let numbered = numbered(table);
    let entry = ledger::begin(
        &client,
        &table.name,
        &table.sql,
        &numbered,
        opts.seed,
        table.rows,
        BATCH,
    )
    .await?;
    progress.done.store(entry.done, Ordering::Relaxed);
    let mut report = TableReport {
        table: table.name.clone(),
        rows: table.rows,
        resumed_from: entry.done,
        added: 0,
        already_filled: entry.pending.is_empty(),
        bytes: 0,
        seconds: 0.0,
    };
    if report.already_filled {
        progress.finished.store(true, Ordering::Relaxed);
        return Ok(report);
    }
    let parents = parent_keys(&client, table, entry.start_index + table.rows).await?;
    let written = written_columns(table)?;
    let list: Vec<String> = written.iter().map(|c| quote(&c.name)).collect();
    let job = Job {
        table,
        written,
        parents,
        copy: format!("COPY {} ({}) FROM STDIN", table.sql, list.join(", ")),
        opts,
        start_index: entry.start_index,
        pending: entry.pending,
        next: AtomicUsize::new(0),
        progress,
    };
    // The first stream is the ledger's connection; the others open their
    // own. Each batch is its own transaction, so a stream that fails leaves
    // only whole batches behind, and the others' are kept.
    let extra = (1..streams.min(job.pending.len())).map(|_| async {
        let c = connect(config).await?;
        job.stream(&c).await
    });
    let (first, others) = futures_util::future::try_join(job.stream(&client), try_join_all(extra)).await?;
    for (rows, bytes) in std::iter::once(first).chain(others) {
        report.added += rows;
        report.bytes += bytes;
    }
    ledger::finish(&client, &table.name, opts.seed, table.rows).await?;
    progress.finished.store(true, Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The columns numbered by row, quoted, with their first number: the
/// ledger records them so a resumed fill goes on from the same numbers.
fn numbered(table: &TablePlan) -> Vec<(String, i64)> {
    table
        .columns
        .iter()
        .filter_map(|c| match c.generator {
            Gen::Sequence { lo } => Some((quote(&c.name), lo)),
            _ => None,
        })
        .collect()
}

/// The columns COPY writes: all but those the server fills.
fn written_columns(table: &TablePlan) -> Result<Vec<&crate::plan::ColumnPlan>, Error> {
    let written: Vec<&crate::plan::ColumnPlan> = table
        .columns
        .iter()
        .filter(|c| c.generator != Gen::ServerDefault)
        .collect();
    if written.is_empty() {
        return Err(Error::other(format!(
            "{}: every column is filled by the server (identity, serial or generated); nothing for COPY to write — give a column a generator in [data.{}] columns",
            table.name, table.name
        )));
    }
    Ok(written)
}

/// One table's fill, shared by its COPY streams: each takes the next
/// pending batch until none is left.
struct Job<'a> {
    table: &'a TablePlan,
    written: Vec<&'a crate::plan::ColumnPlan>,
    parents: Vec<Vec<Vec<String>>>,
    copy: String,
    opts: FillOptions,
    start_index: u64,
    pending: Vec<u64>,
    next: AtomicUsize,
    progress: &'a TableProgress,
}

impl Job<'_> {
    /// Writes batches on `client` until none is left: (rows, bytes).
    async fn stream(&self, client: &Client) -> Result<(u64, u64), Error> {
        let (mut rows, mut bytes) = (0, 0);
        while let Some(&batch) = self.pending.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let (r, b) = self.batch(client, batch).await?;
            rows += r;
            bytes += b;
        }
        Ok((rows, bytes))
    }

    /// One batch in one transaction with its ledger row: (rows, bytes).
    async fn batch(&self, client: &Client, batch: u64) -> Result<(u64, u64), Error> {
        let table = self.table;
        let (start, end) = (batch * BATCH, ((batch + 1) * BATCH).min(table.rows));
        let what = format!("writing rows {start}..{end} of {}", table.name);
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| Error::sql(&what, e))?;
        let sink = client
            .copy_in::<_, Bytes>(&self.copy)
            .await
            .map_err(|e| Error::sql(&what, e))?;
        futures_util::pin_mut!(sink);
        let mut rows = Rows::new(table, &self.written, &self.parents, self.opts.seed, batch);
        let mut buf = BytesMut::with_capacity(CHUNK + 4096);
        let mut bytes = 0u64;
        for i in start..end {
            rows.write(self.start_index + i, &mut buf);
            if buf.len() >= CHUNK || i + 1 == end {
                bytes += buf.len() as u64;
                self.progress.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                sink.send(buf.split().freeze())
                    .await
                    .map_err(|e| Error::sql(&what, e))?;
            }
        }
        sink.as_mut().finish().await.map_err(|e| Error::sql(&what, e))?;
        ledger::advance(client, &table.name, self.opts.seed, table.rows, batch).await?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| Error::sql(&what, e))?;
        self.progress.done.fetch_add(end - start, Ordering::Relaxed);
        Ok((end - start, bytes))
    }
}

/// Each FK's parent keys as text, in key order (so the same parents give
/// the same children), checked to be enough before anything is written.
async fn parent_keys(
    client: &Client,
    table: &TablePlan,
    last_index: u64,
) -> Result<Vec<Vec<Vec<String>>>, Error> {
    let mut out = Vec::new();
    for fk in &table.foreign {
        let cols: Vec<String> = fk
            .parent_columns
            .iter()
            .map(|c| format!("{}::text", quote(c)))
            .collect();
        let order: Vec<String> = fk.parent_columns.iter().map(|c| quote(c)).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {} LIMIT {MAX_PARENT_KEYS}",
            cols.join(", "),
            fk.parent_sql,
            order.join(", ")
        );
        let what = format!(
            "reading the keys of {} for {} ({})",
            fk.parent, table.name, fk.constraint
        );
        let rows = client.query(&sql, &[]).await.map_err(|e| Error::sql(&what, e))?;
        let keys: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                (0..fk.parent_columns.len())
                    .map(|i| r.get::<_, String>(i))
                    .collect()
            })
            .collect();
        let one_each = table.columns.iter().any(
            |c| matches!(&c.generator, Gen::ForeignUnique { constraint, .. } if *constraint == fk.constraint),
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

/// One batch's row writer: a stream per column and per foreign key.
struct Rows<'a> {
    columns: Vec<(&'a Gen, ChaCha8Rng)>,
    foreign: Vec<ChaCha8Rng>,
    picks: Vec<usize>,
    table: &'a TablePlan,
    parents: &'a [Vec<Vec<String>>],
}

impl<'a> Rows<'a> {
    fn new(
        table: &'a TablePlan,
        written: &[&'a crate::plan::ColumnPlan],
        parents: &'a [Vec<Vec<String>>],
        seed: u64,
        batch: u64,
    ) -> Rows<'a> {
        Rows {
            columns: written
                .iter()
                .map(|c| (&c.generator, generator::stream(seed, &table.name, &c.name, batch)))
                .collect(),
            foreign: table
                .foreign
                .iter()
                .map(|f| generator::stream(seed, &table.name, &f.constraint, batch))
                .collect(),
            picks: vec![0; table.foreign.len()],
            table,
            parents,
        }
    }

    fn write(&mut self, index: u64, out: &mut BytesMut) {
        // Every column of one foreign key takes the same parent row.
        for (i, rng) in self.foreign.iter_mut().enumerate() {
            self.picks[i] = generator::skewed(rng, self.parents[i].len());
        }
        for (n, (g, rng)) in self.columns.iter_mut().enumerate() {
            if n > 0 {
                out.extend_from_slice(b"\t");
            }
            match g {
                Gen::Foreign { constraint, position } | Gen::ForeignUnique { constraint, position } => {
                    let fk = self
                        .table
                        .foreign
                        .iter()
                        .position(|f| f.constraint == *constraint)
                        .unwrap_or(0);
                    let keys = &self.parents[fk];
                    let row = if matches!(g, Gen::ForeignUnique { .. }) {
                        (index as usize).min(keys.len() - 1)
                    } else {
                        self.picks[fk]
                    };
                    generator::escape(&keys[row][*position], out);
                }
                other => generator::write(other, rng, index, out),
            }
        }
        out.extend_from_slice(b"\n");
    }
}

/// A SQL identifier, always quoted (the catalog gives names as they are).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
