//! The one place a lab's Plan becomes the small options each stage takes,
//! as pure functions (no process, socket or connection is touched here):
//! `pg::NodeSpec`s for the nodes and the `supervisor::UnitSpec`s that run
//! them and the app services (their `${...}` env references resolved; a
//! service in a container gets the shim's unit and its container's spec),
//! the proxy links' names and options (a docker lab's replication links
//! for its link proxy container), the replications the running lab
//! tracks, and the options of the store, the sampler, hum and the alerts.
//! Only the ports (`ports.rs`, kept across runs in `ports.json`) are chosen
//! elsewhere, because choosing them reads the machine.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use lab::Plan;
use nix::sys::signal::Signal;
use pg::{Account, Binaries, Credentials, NodeSpec};
use supervisor::{LogMode, Probe, ProbeCheck, ProbeSpec, RestartPolicy, UnitSpec};

use crate::layout::StateDir;
use crate::running::ReplicationInfo;

#[cfg(test)]
use service::SHIM_STOP_MARGIN;
pub(crate) use service::{ContainerRun, Refs, condition, container_unit, program, service_unit};

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
            remote: None,
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
        line_tap: None,
        stop_signal: Signal::SIGINT,
        stop_timeout: Duration::from_secs(30),
        policy: RestartPolicy::default(),
        ready: Some(ProbeSpec {
            interval: Duration::from_secs(1),
            // While it starts the probe reads postmaster.pid and connects
            // only once that says ready (pg::probe), so asking often costs
            // nothing (a read of a small file) and the node is seen ready
            // within 5 ms of it.
            start_interval: Duration::from_millis(5),
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

impl std::fmt::Display for MissingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[sample.influx] reads its token from ${}, which is not set; export it and run `prodhome up` again",
            self.0
        )
    }
}

/// The replications the running lab tracks (status, watchers).
pub(crate) fn replications(plan: &Plan) -> Vec<ReplicationInfo> {
    plan.replications
        .iter()
        .map(|r| ReplicationInfo {
            name: r.name.clone(),
            publisher: r.publisher.clone(),
            subscribers: r.subscribers.clone(),
        })
        .collect()
}

/// The store's sinks as `[sample]` says. The influx sink tags every point
/// with the lab's name, so labs can share a database.
pub(crate) fn store_options(
    plan: &Plan,
    state: &StateDir,
) -> std::result::Result<store::StoreOptions, MissingToken> {
    let sample = &plan.sample;
    Ok(store::StoreOptions {
        embedded: sample.embedded.then(|| store::EmbeddedOptions {
            path: state.metrics_db(),
            retention: sample.retention,
        }),
        influx: sample
            .influx
            .as_ref()
            .map(|i| influx_options(i, Some(&plan.name)))
            .transpose()?,
        prometheus: sample.prometheus,
    })
}

/// One node as the sampler sees it: its spec, where it answers on this
/// machine, and its host pid (process stats; `None` without one).
pub(crate) struct SampledNode<'a> {
    pub(crate) spec: &'a NodeSpec,
    pub(crate) pid: Option<u32>,
}

/// The sampler's options: every node itself (not its proxy: the sampler
/// watches the server, whatever a fault does to the paths in front of it),
/// the replications, `[sample]`'s queries and interval.
pub(crate) fn sampler_options(plan: &Plan, nodes: &[SampledNode<'_>]) -> sampler::SamplerOptions {
    let nodes = nodes
        .iter()
        .map(|n| sampler::NodeTarget {
            name: n.spec.name.clone(),
            host: n.spec.tcp_host().to_owned(),
            port: n.spec.port,
            user: pg::SUPERUSER.into(),
            password: n.spec.credentials.superuser.clone(),
            dbname: pg::DATABASE.into(),
            postmaster_pid: n.pid,
            local: n.spec.remote.is_none(),
        })
        .collect();
    let replications = plan
        .replications
        .iter()
        .map(|r| sampler::ReplicationTarget {
            name: r.name.clone(),
            publisher: r.publisher.clone(),
            subscribers: r.subscribers.clone(),
        })
        .collect();
    let custom = plan
        .sample
        .queries
        .iter()
        .map(|q| sampler::CustomQuery {
            name: q.name.clone(),
            nodes: q.nodes.clone(),
            sql: q.sql.clone(),
            tags: q.tags.clone(),
            fields: q.fields.clone(),
        })
        .collect();
    sampler::SamplerOptions {
        interval: plan.sample.interval,
        nodes,
        replications,
        custom,
        statement_timeout: Duration::from_millis(500)
            .max(plan.sample.interval / 2)
            .min(Duration::from_secs(5)),
    }
}

/// The alerts' options from `[alert]`; a command runs in the lab file's
/// directory.
pub(crate) fn alert_options(alert: &lab::AlertPlan, plan: &Plan) -> crate::alerts::AlertOptions {
    crate::alerts::AlertOptions {
        command: alert.command.clone(),
        webhook: alert.webhook.clone(),
        down_after: alert.down_after,
        lag_bytes: alert.lag_bytes,
        min_interval: alert.min_interval,
        lab: plan.name.clone(),
        workdir: Some(plan.dir.clone()),
        ..Default::default()
    }
}

mod links;
mod service;
#[cfg(test)]
mod tests;

#[cfg(test)]
use links::link_names;
pub(crate) use links::{kept_port_names, link_options, link_proxy};
