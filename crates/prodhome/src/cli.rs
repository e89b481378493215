//! The command-line grammar: the global flags and the commands here, the
//! arguments of the larger subcommands in `cli/args.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lab::parse_duration;

mod args;
pub(crate) use args::{
    CopyFormatArg, DataCommand, DataFillArgs, ExportDatasource, HumArgs, ImageCommand, MetricsArgs,
    MetricsFormat, MigrateArgs,
};

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
    /// Like docker compose, given before the command: `prodhome -f lab.toml
    /// logs -f publisher` (the second -f is logs' follow).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// The lab's state directory (default: .prodhome/<lab> beside the lab file).
    #[arg(long, env = "PRODHOME_STATE_DIR", value_name = "DIR")]
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
    /// Check the lab file and the files it names, and print the lab as `up`
    /// would run it (secrets as names only); starts nothing, creates no
    /// state. Exits 1 with every problem, located, when it is not valid.
    Check {
        /// Print the resolved lab (or the problems) as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Bring the lab up: nodes, replication, proxies, services, hum, sampler,
    /// dashboard, chaos scenarios, alerts; Ctrl-C stops it.
    ///
    /// Starts everything the lab file names: the Postgres nodes, logical
    /// replication between them, the TCP proxies on every replication link
    /// and client path, the app services, the hum (background traffic), the
    /// sampler, the dashboard and control API, the [[chaos]] scenarios and
    /// the alerts. Ready means every node answers and every subscription
    /// streams.
    Up {
        /// Run in the background; return once everything is ready.
        #[arg(short = 'd', long)]
        detach: bool,
        /// How long nodes and subscriptions may take to get ready.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: Duration,
        /// Run the nodes as host processes or in containers, whatever the
        /// lab file's `backend` says.
        #[arg(long, value_parser = parse_backend)]
        backend: Option<lab::Backend>,
    },
    /// Stop every process of the lab.
    Down {
        /// Also delete the state directory (data, logs, secrets).
        #[arg(long)]
        purge: bool,
    },
    /// Show nodes, pids, ports, health, restarts and replication lag, and
    /// the faults in force on each (a paused node reads `paused`).
    Status {
        /// Print the status as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run psql on a node with the right credentials.
    Psql {
        /// The node to connect to.
        node: String,
        /// Arguments passed to psql.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print shell exports (PGHOST, PGPORT, ..., DATABASE_URL) for a node.
    Env {
        /// The node to describe.
        node: String,
    },
    /// Show a node's log ("daemon" for the daemon's own).
    Logs {
        /// A node or service; all of them, interleaved, when left out.
        node: Option<String>,
        /// Keep printing as the log grows.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only entries this severe or more: debug, info, warning, error,
        /// fatal (Postgres's LOG is info).
        #[arg(long, value_name = "LEVEL")]
        level: Option<String>,
        /// Only entries whose text contains TEXT.
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
    },
    /// Show the lab's events: starts, crashes, restarts, faults on and off,
    /// hum, alerts (from the daemon, or the event log when it is not running).
    Events {
        /// Only events this recent, e.g. 10m (default: all).
        #[arg(long, value_parser = parse_duration, value_name = "DUR")]
        since: Option<Duration>,
        /// Keep printing events as they happen.
        #[arg(short = 'f', long)]
        follow: bool,
        /// One JSON list (with --follow: one JSON object per line).
        #[arg(long)]
        json: bool,
    },
    /// Prove replication converged: probe rows arrive, tables match.
    Verify {
        /// How long probe rows may take to reach every subscriber.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        /// Also check every acknowledged write in the lab's hum ledger, every
        /// subscriber's keys, and every slot.
        #[arg(long)]
        ledger: bool,
        /// Like --ledger, with the ledger of another hum run.
        #[arg(long, value_name = "FILE")]
        ledger_file: Option<PathBuf>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check this machine can run the lab, with the fix for each problem.
    Doctor {
        /// Print the checks as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Restart one node or service.
    Restart {
        /// The node or service.
        name: String,
    },
    /// Stop one node or service (it stays down until `start`).
    Stop {
        /// The node or service.
        name: String,
    },
    /// Start one node or service that was stopped or gave up.
    Start {
        /// The node or service.
        name: String,
    },
    /// Print one of the lab's generated secrets.
    Secret {
        /// A node's name (its password) or a `[secrets]` name.
        name: String,
    },
    /// Drive traffic at a node: TPC-B, books or a script; open loop at a
    /// rate or closed loop at max; latency percentiles, errors by SQLSTATE.
    Hum(Box<HumArgs>),
    /// Load with a ledger plus random faults, then heal, verify and judge.
    Soak {
        /// How long to load and break the lab.
        #[arg(short = 'T', long, default_value = "10m", value_parser = parse_duration)]
        duration: Duration,
        /// Seed of the fault schedule: the same seed, the same faults.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The faults to draw from, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "kill,pause,partition,latency,reset"
        )]
        faults: Vec<String>,
        /// Load: transactions per second, or `max` for a closed loop (as hum's -R).
        #[arg(short = 'R', long, default_value = "100", value_name = "TPS|max")]
        rate: hum::Rate,
        /// Load: concurrent sessions (as hum's -c).
        #[arg(short, long, default_value_t = 4)]
        clients: u32,
        /// Print the fault schedule and exit.
        #[arg(long)]
        dry_run: bool,
        /// Print the verdict as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Break something now: `chaos FAULT TARGET [--for 10s]`, `chaos list`, `chaos heal`.
    ///
    /// Node faults (kill, stop, pause, restart) take a node; link faults
    /// (latency, bandwidth, stall, reset, partition) take PUBLISHER:SUBSCRIBER
    /// (a replication link, e.g. `chaos partition publisher:subscriber1`;
    /// `->` works too, quoted, as a shell reads `>` as a redirect) or NODE /
    /// clients:NODE (the client path).
    Chaos {
        /// kill, stop, pause, restart, latency, bandwidth, stall, reset,
        /// partition; or `list` (faults in force) or `heal` (undo them all).
        fault: String,
        /// NODE, PUBLISHER:SUBSCRIBER or clients:NODE.
        target: Option<String>,
        /// Undo the fault after this long (default: until `chaos heal`).
        #[arg(long = "for", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Latency: the added delay.
        #[arg(long, value_parser = parse_duration, default_value = "100ms")]
        delay: Duration,
        /// Latency: the jitter around it.
        #[arg(long, value_parser = parse_duration, default_value = "20ms")]
        jitter: Duration,
        /// Bandwidth: bytes per second.
        #[arg(long, default_value_t = 65536)]
        bytes_per_sec: u64,
        /// Partition: cut the node itself off its network (a docker lab's
        /// container leaves the lab network), not only its client path.
        #[arg(long)]
        network: bool,
        /// Print the applied fault (or `list`'s faults) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Burly synthetic data for the lab's own schema: `data fill` writes
    /// rows that satisfy its constraints, `data plan` shows what and why.
    #[command(subcommand)]
    Data(DataCommand),
    /// Read sampled series from the embedded store (<state dir>/metrics.db).
    Metrics(MetricsArgs),
    /// Write the run's story as one self-contained HTML file: the lab, what
    /// ran (hum, faults, migrations), charts, a timeline of events and
    /// faults, top errors and slow statements, verify/soak verdicts.
    ///
    /// Read from the state directory (metrics.db, events.jsonl), so it works
    /// for a lab that is down too. The file needs no network: charts are
    /// inline SVG, with no scripts, fonts or images fetched.
    Report {
        /// How far back the report looks.
        #[arg(long, default_value = "1h", value_parser = parse_duration, value_name = "DUR")]
        since: Duration,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also draw the page into this PNG, with headless Chromium (which
        /// must be installed: Debian's `chromium`), offline.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// Print the running lab's dashboard URL (and open it in a browser when
    /// stdout is a terminal).
    Dash,
    /// Export the lab for another engine or the dashboard for Grafana:
    /// `export compose|stack|k8s --out DIR [--cnpg] [--force]`,
    /// `export grafana [--datasource influx|prometheus] [--out DIR]`.
    Export {
        /// What to export: compose (docker compose), stack (docker stack
        /// deploy), k8s (Kubernetes manifests) or grafana.
        what: String,
        /// Where Grafana reads the lab's metrics (the lab's influx or
        /// prometheus sink).
        #[arg(long, value_enum, default_value = "influx")]
        datasource: ExportDatasource,
        /// The datasource's URL (default: the lab's [sample.influx] url, or
        /// http://127.0.0.1:8086 / http://127.0.0.1:9090).
        #[arg(long)]
        url: Option<String>,
        /// The directory to write into (grafana: `grafana` by default).
        #[arg(long)]
        out: Option<PathBuf>,
        /// k8s: the nodes as CloudNativePG clusters, with its Publication
        /// and Subscription resources.
        #[arg(long)]
        cnpg: bool,
        /// Write into a non-empty directory another export did not make.
        #[arg(long)]
        force: bool,
    },
    /// Rehearse a schema change under load: `migrate FILE.sql` or
    /// `migrate -- COMMAND ARGS...`; lock waits, hum's p99, replication,
    /// a verdict (exit 1 when it fails the thresholds).
    Migrate(Box<MigrateArgs>),
    /// (internal) The detached daemon started by `up -d`.
    #[command(name = "__daemon", hide = true)]
    Daemon {
        /// How long nodes and subscriptions may take to get ready.
        #[arg(long, value_parser = parse_duration)]
        timeout: Duration,
        /// `up --backend`, passed on.
        #[arg(long, value_parser = parse_backend)]
        backend: Option<lab::Backend>,
    },
    /// The lab's controller, inside compose, Swarm or Kubernetes (the
    /// files `prodhome export` writes run it): on nodes the engine runs, it
    /// waits until each answers, sets up roles, schema and replication,
    /// then runs hum, the sampler, the dashboard and the control API until
    /// stopped. Reads PRODHOME_NODE_HOSTS (NODE=HOST,...),
    /// PRODHOME_SECRETS_DIR, PRODHOME_LISTEN and PRODHOME_CONTROLLER_HOST.
    Controller {
        /// How long the nodes and subscriptions may take to get ready.
        #[arg(long, default_value = "300s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// (internal) A Docker lab's link proxy, run by the daemon inside the
    /// lab's network: every replication link, and the control endpoint the
    /// daemon applies link faults through.
    #[command(name = "link-serve", hide = true)]
    LinkServe {
        /// The control endpoint's port (every interface of the container).
        #[arg(long)]
        control: u16,
        /// The file holding the control token (mounted read-only).
        #[arg(long)]
        token_file: PathBuf,
        /// Seeds latency jitter.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// One link, `NAME@PORT=HOST:PORT`; repeatable.
        #[arg(long = "link", value_name = "LINK", value_parser = proxy::control::RemoteLinkSpec::parse_arg)]
        links: Vec<proxy::control::RemoteLinkSpec>,
    },
    /// Container images built offline from this host's files: `image build`.
    #[command(subcommand)]
    Image(ImageCommand),
    /// (internal) One life of a containerised service, run by the daemon's
    /// supervisor: the container's spec comes in `PRODHOME_CONTAINER_SPEC`.
    #[command(name = "__service-container", hide = true)]
    ServiceContainer {
        /// The container's name, so that `ps` (and the next daemon) can tell.
        container: String,
    },
}

fn parse_backend(name: &str) -> Result<lab::Backend, String> {
    lab::Backend::from_name(name).ok_or_else(|| format!("expected one of {}", lab::Backend::NAMES.join(", ")))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// clap checks the grammar only when a command is parsed; this checks
    /// all of it (a clash such as two `-f`s fails here, not for a user).
    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag and positional argument of every subcommand says what it
    /// is for in `--help`.
    #[test]
    fn every_argument_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    #[test]
    fn file_before_the_command_and_follow_after_it() {
        let cli = Cli::try_parse_from(["prodhome", "-f", "lab.toml", "logs", "-f", "publisher"]).unwrap();
        assert_eq!(cli.global.file, Some(PathBuf::from("lab.toml")));
        assert!(matches!(cli.command, Command::Logs { follow: true, .. }));
    }

    /// soak takes hum's load flags, `max` included.
    #[test]
    fn soak_takes_hums_short_load_flags_and_a_max_rate() {
        let cli = Cli::try_parse_from(["prodhome", "soak", "-R", "max", "-c", "8", "-T", "30s"]).unwrap();
        match cli.command {
            Command::Soak {
                rate,
                clients,
                duration,
                ..
            } => {
                assert_eq!(rate, hum::Rate::Max);
                assert_eq!(clients, 8);
                assert_eq!(duration, Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["prodhome", "soak", "--rate", "fast"]).is_err());
    }
}
