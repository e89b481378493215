//! The arguments of the subcommands that have many (`image`, `data`,
//! `metrics`, `hum`, `migrate`) and the value enums they and `export` take.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use lab::parse_duration;

/// `prodhome image …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Build the lab's Postgres image (its `postgres_version`) from this
    /// host's PostgreSQL files, and the controller's from this prodhome
    /// binary (what `prodhome export` files run), with no registry; an
    /// unchanged host finds the images it built before.
    Build {
        /// Print the image as one JSON object.
        #[arg(long)]
        json: bool,
        /// Tag it under another repository than `prodhome/postgres` (a
        /// benchmark's cold build, which must not untag the labs' image).
        #[arg(long, value_name = "NAME", hide = true)]
        repository: Option<String>,
    },
}

/// `prodhome data …`.
#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Generate rows for the replicated tables (parents first), stream them
    /// with COPY; a re-run with the same arguments adds nothing twice, an
    /// interrupted one resumes.
    Fill(DataFillArgs),
    /// Print what `fill` would generate per table and column, and why.
    Plan {
        /// Only this table (`t` or `schema.t`); repeatable. Default: the
        /// replicated tables.
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// The node whose tables are read (default: the first replication's publisher).
        #[arg(long)]
        node: Option<String>,
        /// Rows per table, as `fill --rows` would use (default: [data.TABLE] rows, else 1000).
        #[arg(long)]
        rows: Option<u64>,
        /// Print the plan as one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// `prodhome data fill`'s flags.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("amount").required(true).args(["rows", "scale"]))]
pub(crate) struct DataFillArgs {
    /// Only this table (`t` or `schema.t`); repeatable. Its parents must
    /// already have rows. Default: the replicated tables.
    #[arg(long = "table", value_name = "TABLE")]
    pub(crate) tables: Vec<String>,
    /// Rows for every table.
    #[arg(long)]
    pub(crate) rows: Option<u64>,
    /// Multiply each table's rows ([data.TABLE] rows, else 1000) by this.
    #[arg(long)]
    pub(crate) scale: Option<u64>,
    /// Seeds every value: the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// The node to write to (default: the first replication's publisher).
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// Then wait until the subscribers caught up and verify they match.
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait waits for the subscribers.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Print a JSON summary instead of lines.
    #[arg(long)]
    pub(crate) json: bool,
    /// COPY connections at once (default: one per core, at least 2).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) streams: Option<u64>,
    /// COPY format: auto (binary when every column has a binary
    /// encoding) or text.
    #[arg(long, value_enum, default_value_t = CopyFormatArg::Auto)]
    pub(crate) copy_format: CopyFormatArg,
    /// Keep an empty table's keys and indexes in place during the load
    /// (default: drop them and build them again after it, as pgbench -i
    /// builds its primary keys).
    #[arg(long)]
    pub(crate) keep_keys: bool,
}

/// `data fill --copy-format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum CopyFormatArg {
    Auto,
    Text,
}

/// `prodhome metrics`'s flags.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// One measurement: locks, activity, database, replication, process,
    /// sample_errors, sampler, a custom query's name (default: all).
    #[arg(short, long)]
    pub(crate) measurement: Option<String>,
    /// Only this node's series.
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// How far back to read.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(crate) since: Duration,
    /// Average samples into buckets this wide (0: every sample as stored).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub(crate) step: Duration,
    /// table: one line per series (last, min, avg, max); csv, json: every sample.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: MetricsFormat,
    /// Every sample as JSON: the same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
}

impl MetricsArgs {
    /// The output format, `--json` included.
    pub(crate) fn format(&self) -> MetricsFormat {
        if self.json {
            MetricsFormat::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MetricsFormat {
    Table,
    Csv,
    Json,
}

/// `prodhome hum`'s flags (pgbench's short names where it has them).
#[derive(Debug, Args)]
pub(crate) struct HumArgs {
    /// The lab node to drive.
    #[arg(long, default_value = "publisher", conflicts_with = "url")]
    pub(crate) node: String,
    /// Drive any server instead: postgresql://USER[:PASSWORD]@HOST:PORT/DB.
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Send the books workload's reads to this node (repeatable), as to a read replica.
    #[arg(long = "read-node", value_name = "NAME")]
    pub(crate) read_nodes: Vec<String>,
    /// Send reads to this server (repeatable).
    #[arg(long = "read-url", value_name = "URL")]
    pub(crate) read_urls: Vec<String>,
    /// tpcb, books, or a script file in pgbench's syntax.
    #[arg(short, long, default_value = "tpcb", value_name = "tpcb|books|FILE")]
    pub(crate) workload: String,
    /// Concurrent sessions.
    #[arg(short, long, default_value_t = 4)]
    pub(crate) clients: u32,
    /// Transactions per second over all clients (open loop), or `max` (closed loop).
    #[arg(short = 'R', long, default_value = "max", value_name = "TPS|max")]
    pub(crate) rate: String,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(short = 'T', long, value_parser = parse_duration, conflicts_with = "transactions")]
    pub(crate) duration: Option<Duration>,
    /// Stop after this many transactions in total.
    #[arg(short, long)]
    pub(crate) transactions: Option<u64>,
    /// TPC-B scale for --init (100,000 accounts each); a run uses the tables' own.
    #[arg(short, long, default_value_t = 10)]
    pub(crate) scale: u32,
    /// Seed for every random choice (default: from the clock; the summary shows it).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Progress line on stderr this often; 0 for none.
    #[arg(short = 'P', long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) progress: Duration,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Create the workload's tables first (tpcb: drop and refill, like pgbench -i);
    /// without --duration or --transactions, stop there.
    #[arg(long)]
    pub(crate) init: bool,
    /// Append every acknowledged write (table, key) to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) ledger: Option<PathBuf>,
    /// Seeded rate spikes (2-5x for 2-8 s, every ~20 s; open loop only).
    #[arg(long)]
    pub(crate) spikes: bool,
    /// Share of transactions that hold a hot row lock for 0.5-3 s (0-1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub(crate) long_tx_share: f64,
    /// Share of transactions after which the client reconnects (0-1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub(crate) disconnect_share: f64,
}

/// `prodhome migrate`'s flags.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The SQL file to apply (or give the command after `--`).
    #[arg(required_unless_present = "command", conflicts_with = "command")]
    pub(crate) file: Option<PathBuf>,
    /// Run this instead (e.g. `-- psql -f x.sql`, `-- bin/rails db:migrate`),
    /// with the node's DATABASE_URL and PG* variables in its environment.
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
    /// The node to migrate (default: the first replication's publisher).
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// Fail the verdict when a session waited longer than this on the migration.
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_blocked_ms: u64,
    /// Fail the verdict when hum's p99 latency during the migration exceeds this.
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_p99_ms: u64,
    /// lock_timeout for the migration's session (e.g. 1s); none by default.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) lock_timeout: Option<Duration>,
    /// Attempts after the first when the migration hits lock_timeout (55P03).
    #[arg(long, default_value_t = 0)]
    pub(crate) retries: u32,
    /// How long hum is measured before and after the migration.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub(crate) window: Duration,
    /// The measuring hum's rate (transactions per second, open loop).
    #[arg(long, default_value_t = 50.0)]
    pub(crate) rate: f64,
    /// How long every subscriber may take to show the change.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub(crate) replication_timeout: Duration,
    /// Print the whole report as one JSON object (blocked_sessions, max_lock_wait_ms, ..., verdict).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `prodhome export grafana --datasource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportDatasource {
    Influx,
    Prometheus,
}
