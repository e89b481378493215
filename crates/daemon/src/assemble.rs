//! The one place a lab's Plan becomes the small options each stage takes:
//! `pg::NodeSpec`s for the nodes and `supervisor::UnitSpec`s to run them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use lab::Plan;
use nix::sys::signal::Signal;
use pg::{Account, Binaries, Credentials, NodeSpec};
use supervisor::{LogMode, Probe, ProbeCheck, ProbeSpec, RestartPolicy, UnitSpec};

use crate::layout::StateDir;

/// Unix sockets paths are limited to 107 bytes.
const MAX_SOCKET_PATH: usize = 107;

/// The node specs for `plan`, with the given ports and credentials.
pub(crate) fn node_specs(
    plan: &Plan,
    state: &StateDir,
    ports: &BTreeMap<String, u16>,
    secrets: &BTreeMap<String, Credentials>,
) -> Result<Vec<NodeSpec>> {
    let mut specs = Vec::new();
    for node in &plan.nodes {
        let (Some(&port), Some(credentials)) = (ports.get(&node.name), secrets.get(&node.name)) else {
            bail!(
                "node {} has no port or credentials yet: run `prodhome up` first",
                node.name
            );
        };
        let socket_dir = state.socket_dir(&node.name);
        let socket = socket_dir.join(format!(".s.PGSQL.{port}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the state directory {} is too deep: the unix socket path {} would pass the system's limit of {MAX_SOCKET_PATH} bytes. \
                 Use a shorter --state-dir",
                state.root().display(),
                socket.display()
            );
        }
        specs.push(NodeSpec {
            name: node.name.clone(),
            data_dir: state.data_dir(&node.name),
            socket_dir,
            port,
            settings: node.settings.clone(),
            credentials: credentials.clone(),
        });
    }
    Ok(specs)
}

/// How the supervisor runs one node: as the server account, fast shutdown
/// on SIGINT, readiness when a real connection runs a real query.
pub(crate) fn node_unit(bins: &Binaries, account: &Account, state: &StateDir, node: &NodeSpec) -> UnitSpec {
    let (program, args) = pg::server_command(bins, node);
    let probe_node = node.clone();
    let probe: Probe = std::sync::Arc::new(move || {
        let node = probe_node.clone();
        Box::pin(async move { pg::probe(&node).await.map_err(|e| e.to_string()) })
    });
    UnitSpec {
        name: node.name.clone(),
        program,
        args,
        // Postgres reads PGDATA and friends; the lab must not depend on the
        // caller's environment.
        env: vec![("LC_ALL".into(), "C".into())],
        cwd: Some(state.node_dir(&node.name)),
        user: account.switch.then_some((account.uid, account.gid)),
        log: state.node_log(&node.name),
        // Direct file, not pipes: a server must outlive a daemon killed -9.
        log_mode: LogMode::File,
        stop_signal: Signal::SIGINT,
        stop_timeout: Duration::from_secs(30),
        policy: RestartPolicy::default(),
        ready: Some(ProbeSpec {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            ..ProbeSpec::new(ProbeCheck::Custom(probe))
        }),
        live: None,
    }
}

/// hum's connection to `node` at `port` (its proxied client port, so that
/// client-path faults show in hum's latency), as the superuser.
pub(crate) fn hum_target(node: &NodeSpec, port: u16) -> hum::Target {
    hum::Target {
        host: "127.0.0.1".into(),
        port,
        user: pg::SUPERUSER.into(),
        password: Some(node.credentials.superuser.clone()),
        dbname: pg::DATABASE.into(),
        name: node.name.clone(),
    }
}

/// The lab's `[hum]` as hum's options. `port_of` gives the port hum
/// connects to for a node.
pub(crate) fn hum_options(
    plan: &lab::HumPlan,
    nodes: &[NodeSpec],
    port_of: impl Fn(&NodeSpec) -> u16,
    ledger: std::path::PathBuf,
) -> Result<hum::HumOptions> {
    let target_of = |name: &str| -> Result<hum::Target> {
        let node = nodes.iter().find(|n| n.name == name);
        let node =
            node.ok_or_else(|| anyhow::anyhow!("hum names node {name}, which the lab does not have"))?;
        Ok(hum_target(node, port_of(node)))
    };
    let workload = match &plan.workload {
        lab::HumWorkload::Tpcb => hum::Workload::Tpcb { scale: plan.scale },
        lab::HumWorkload::Books => hum::Workload::Books,
        lab::HumWorkload::Script { path, text } => hum::Workload::Script {
            path: path.clone(),
            text: text.clone(),
        },
    };
    let mut opts = hum::HumOptions::new(target_of(&plan.node)?, workload);
    opts.read_targets = plan
        .read_from
        .iter()
        .map(|n| target_of(n))
        .collect::<Result<_>>()?;
    opts.clients = plan.clients;
    opts.rate = match plan.rate {
        Some(per_second) => hum::Rate::PerSecond(per_second),
        None => hum::Rate::Max,
    };
    opts.seed = plan.seed;
    opts.stochastic = hum::Stochastic {
        spikes: plan.spikes,
        long_tx_share: plan.long_transactions,
        disconnect_share: plan.disconnects,
    };
    opts.ledger = Some(ledger);
    Ok(opts)
}

/// The influx sink's options from `[sample.influx]`; `lab` tags every point
/// (the daemon's sink) or nothing (doctor's one-off look). A v2 token is
/// read from its variable now: `Err` names the variable when it is unset.
pub(crate) fn influx_options(
    influx: &lab::InfluxPlan,
    lab: Option<&str>,
) -> std::result::Result<store::InfluxOptions, MissingToken> {
    let (url, api, create_database) = match influx {
        lab::InfluxPlan::V1 {
            url,
            db,
            create_database,
        } => (url, store::InfluxApi::V1 { db: db.clone() }, *create_database),
        lab::InfluxPlan::V2 {
            url,
            org,
            bucket,
            token_env,
        } => {
            let token = std::env::var(token_env)
                .ok()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| MissingToken(token_env.clone()))?;
            let api = store::InfluxApi::V2 {
                org: org.clone(),
                bucket: bucket.clone(),
                token: model::Secret::new(token),
            };
            (url, api, false)
        }
    };
    Ok(store::InfluxOptions {
        url: url.clone(),
        api,
        batch: 5000,
        buffer: 100_000,
        lab: lab.map(str::to_string),
        create_database,
    })
}

/// `[sample.influx] token_env` names a variable that is not set.
#[derive(Debug)]
pub struct MissingToken(pub String);
