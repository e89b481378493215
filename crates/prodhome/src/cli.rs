//! The command-line grammar.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lab::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "prodhome",
    version,
    about = "Production @ Home: a Postgres replication lab on your laptop"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// The lab file (default: ./prodhome.toml, or the built-in seed lab).
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// The lab's state directory (default: .prodhome/<lab> beside the lab file).
    #[arg(long, global = true, env = "PRODHOME_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a starter prodhome.toml and schema.sql (the seed lab).
    Init {
        /// Directory to write into.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Bring the lab up: nodes, replication; Ctrl-C stops it.
    Up {
        /// Run in the background; return once everything is ready.
        #[arg(short = 'd', long)]
        detach: bool,
        /// How long nodes and subscriptions may take to get ready.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Stop every process of the lab.
    Down {
        /// Also delete the state directory (data, logs, secrets).
        #[arg(long)]
        purge: bool,
    },
    /// Show nodes, pids, ports, health, restarts and replication lag.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run psql on a node with the right credentials.
    Psql {
        node: String,
        /// Arguments passed to psql.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print shell exports (PGHOST, PGPORT, ..., DATABASE_URL) for a node.
    Env { node: String },
    /// Show a node's log ("daemon" for the daemon's own).
    Logs {
        node: String,
        /// Keep printing as the log grows.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Prove replication converged: probe rows arrive, tables match.
    Verify {
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Check this machine can run the lab, with the fix for each problem.
    Doctor,
    /// (internal) The detached daemon started by `up -d`.
    #[command(name = "__daemon", hide = true)]
    Daemon {
        #[arg(long, value_parser = parse_duration)]
        timeout: Duration,
    },
}
