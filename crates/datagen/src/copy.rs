//! Streams a [`FillPlan`] into a node: per table, batches of rows written
//! with COPY, each batch its own transaction together with its progress in
//! the ledger; up to `streams` connections per FK depth, shared among its
//! tables, each taking the next pending batch of its table, so one big
//! table keeps several backends busy (the streams themselves are in
//! `stream`).
//!
//! Work the server would otherwise repeat per row is saved where it can
//! be: binary COPY when every column has a binary encoding (no parsing of
//! numbers, dates, uuids), keys built after the load when the table was
//! empty (`keys`), and `synchronous_commit = off` for the fill's sessions
//! (a batch's commit does not wait for its WAL flush; a crash loses at most
//! the last batches, with their ledger rows, so a re-run writes them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::future::try_join_all;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_postgres::{Client, Config, NoTls};

use crate::generator::Gen;
use crate::plan::{FillPlan, TablePlan};
use crate::rows::{CopyFormat, Layout, quote};
use crate::stream::{self, Job};
pub use crate::stream::{BATCH, TableProgress};
use crate::{Error, keys, ledger};

#[derive(Debug, Clone, Copy)]
pub struct FillOptions {
    pub seed: u64,
    /// COPY streams per FK depth, shared among its tables (each has at
    /// least one).
    pub streams: usize,
    pub format: CopyFormat,
    /// Build an empty table's keys after the load (`keys`); false loads
    /// with them in place.
    pub keys_after_load: bool,
}

impl FillOptions {
    /// The defaults: [`default_streams`], binary where it fits, keys after
    /// the load.
    pub fn new(seed: u64) -> FillOptions {
        FillOptions {
            seed,
            streams: default_streams(),
            format: CopyFormat::Auto,
            keys_after_load: true,
        }
    }
}

/// One stream per core, at least two: a stream keeps one backend busy
/// while its generator thread encodes the next chunk (see BENCHMARKS.md,
/// "Synthetic data").
pub fn default_streams() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Live counters the CLI reads for its progress line.
#[derive(Debug)]
pub struct Progress {
    pub tables: Vec<TableProgress>,
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
    /// COPY's format: `binary` or `text`.
    pub format: &'static str,
    /// Keys (primary key, UNIQUE, indexes) dropped for the load of an
    /// empty table and built again after it, by name.
    pub keys_built_after_load: Vec<String>,
    pub bytes: u64,
    pub seconds: f64,
    /// Of `seconds`: writing the rows, and building the keys after them.
    pub load_seconds: f64,
    pub keys_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FillReport {
    pub seed: u64,
    pub streams: usize,
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
        let streams = (opts.streams.max(1) / tables.max(1)).max(1);
        for (i, table) in plan.tables.iter().enumerate().filter(|(_, t)| t.depth == depth) {
            let (config, table, progress) = (config.clone(), table.clone(), progress.clone());
            set.spawn(async move { fill_table(&config, table, opts, &progress.tables[i], streams).await });
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
        streams: opts.streams,
        tables: reports,
        rows_added,
        bytes,
        seconds,
        rows_per_sec: rows_added as f64 / seconds.max(1e-6),
        mb_per_sec: bytes as f64 / 1e6 / seconds.max(1e-6),
    })
}

/// A session of the fill: `synchronous_commit` off (see the module's
/// overview).
pub(crate) async fn connect(config: &Config) -> Result<Client, Error> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::sql("connecting to the node", e))?;
    tokio::spawn(connection);
    client
        .batch_execute("SET synchronous_commit = off")
        .await
        .map_err(|e| Error::sql("setting up the fill's session", e))?;
    Ok(client)
}

async fn fill_table(
    config: &Config,
    table: TablePlan,
    opts: FillOptions,
    progress: &TableProgress,
    streams: usize,
) -> Result<TableReport, Error> {
    let started = Instant::now();
    let client = connect(config).await?;
    let numbered = numbered(&table);
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
    let layout = Layout::new(&table, opts.format)?;
    let mut report = TableReport {
        table: table.name.clone(),
        rows: table.rows,
        resumed_from: entry.done,
        added: 0,
        already_filled: entry.pending.is_empty(),
        format: layout.format_name(),
        keys_built_after_load: Vec::new(),
        bytes: 0,
        seconds: 0.0,
        load_seconds: 0.0,
        keys_seconds: 0.0,
    };
    if report.already_filled {
        progress.finished.store(true, Ordering::Relaxed);
        return Ok(report);
    }
    let parents = stream::parent_keys(&client, &table, layout.binary, entry.start_index + table.rows).await?;
    let empty_fill = opts.keys_after_load && entry.done == 0;
    let deferred = keys::defer(&client, &table.name, &table.sql, empty_fill).await?;
    let job = Arc::new(Job {
        table,
        layout,
        parents,
        seed: opts.seed,
        start_index: entry.start_index,
        pending: entry.pending,
        next: AtomicUsize::new(0),
        committed: AtomicU64::new(0),
    });
    let loading = Instant::now();
    let (rows, bytes) = load(config, &client, &job, progress, streams).await?;
    report.added = rows;
    report.bytes = bytes;
    report.load_seconds = loading.elapsed().as_secs_f64();
    if !deferred.is_empty() {
        let building = Instant::now();
        report.keys_built_after_load = keys::rebuild(&client, &job.table.name).await?;
        report.keys_seconds = building.elapsed().as_secs_f64();
    }
    ledger::finish(&client, &job.table.name, opts.seed, job.table.rows).await?;
    progress.finished.store(true, Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes every pending batch of `job` over `streams` connections, the
/// first of them `client` (the ledger's); returns (rows, bytes). Each batch
/// is its own transaction, so a stream that fails leaves only whole batches
/// behind, and the others' are kept.
async fn load(
    config: &Config,
    client: &Client,
    job: &Arc<Job>,
    progress: &TableProgress,
    streams: usize,
) -> Result<(u64, u64), Error> {
    let extra = (1..streams.min(job.pending.len())).map(|_| async {
        let c = connect(config).await?;
        stream::stream(job.clone(), &c, progress).await
    });
    let (first, others) =
        futures_util::future::try_join(stream::stream(job.clone(), client, progress), try_join_all(extra))
            .await?;
    if job.committed.load(Ordering::Relaxed) != job.pending.len() as u64 {
        return Err(Error::other(format!(
            "{}: a generator thread stopped before its batches were written; run the same command again to write them",
            job.table.name
        )));
    }
    Ok(std::iter::once(first)
        .chain(others)
        .fold((0, 0), |(r, b), (rows, bytes)| (r + rows, b + bytes)))
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
