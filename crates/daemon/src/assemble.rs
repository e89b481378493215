//! The one place a lab's Plan becomes the small options each stage takes,
//! as pure functions (no process, socket or connection is touched here):
//! `pg::NodeSpec`s for the nodes and the `supervisor::UnitSpec`s that run
//! them and the app services (their `${...}` env references resolved; a
//! service in a container gets the shim's unit and its container's spec),
//! the proxy links' names and options, the replications the running lab
//! tracks, and the options of the store, the sampler, hum and the alerts.
//! Only the ports (`ports.rs`, kept across runs in `ports.json`) are chosen
//! elsewhere, because choosing them reads the machine.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use lab::{DependsOn, Plan, ProbeCheckPlan, ProbePlan, RestartPlan, ServicePlan};
use model::Secret;
use nix::sys::signal::Signal;
use pg::{Account, Binaries, Credentials, NodeSpec};
use supervisor::{Condition, LogMode, Probe, ProbeCheck, ProbeSpec, RestartMode, RestartPolicy, UnitSpec};

use crate::layout::StateDir;
use crate::links::{Links, clients_link, replication_link};
use crate::running::ReplicationInfo;

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

impl std::fmt::Display for MissingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[sample.influx] reads its token from ${}, which is not set; export it and run `prodhome up` again",
            self.0
        )
    }
}

/// What env references resolve against.
#[derive(Clone, Copy)]
pub(crate) struct Refs<'a> {
    pub(crate) nodes: &'a [NodeSpec],
    pub(crate) links: &'a Links,
    pub(crate) secrets: &'a BTreeMap<String, Secret>,
    /// The lab whose network the referring service is on: `Some` for a
    /// service in a container, which reaches a node by its container's
    /// name at the port it listens on there (as a subscriber container
    /// reaches its publisher); `None` natively (127.0.0.1, through the
    /// node's client proxy).
    pub(crate) lab_network: Option<&'a str>,
}

impl Refs<'_> {
    /// `value` with every `${...}` replaced (the lab checked they exist).
    pub(crate) fn resolve(&self, value: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unclosed ${{ in {value:?}"))?;
            out.push_str(&self.one(&after[..end])?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn one(&self, reference: &str) -> Result<String> {
        let parts: Vec<&str> = reference.split('.').collect();
        match parts.as_slice() {
            ["postgres", node, attr] => {
                let spec = self
                    .nodes
                    .iter()
                    .find(|n| n.name == *node)
                    .ok_or_else(|| anyhow!("no node {node}"))?;
                let (host, port) = match self.lab_network {
                    Some(lab) => (engine::lab::container_name(lab, node), spec.port),
                    None => (
                        Ipv4Addr::LOCALHOST.to_string(),
                        self.links.client_port(node).unwrap_or(spec.port),
                    ),
                };
                let password = spec.credentials.superuser.expose();
                Ok(match *attr {
                    "url" => format!(
                        "postgresql://{}:{password}@{host}:{port}/{}",
                        pg::SUPERUSER,
                        pg::DATABASE
                    ),
                    "host" => host,
                    "port" => port.to_string(),
                    "user" => pg::SUPERUSER.into(),
                    "password" => password.to_string(),
                    "database" => pg::DATABASE.into(),
                    other => return Err(anyhow!("unknown attribute {other}")),
                })
            }
            ["secret", name] => Ok(self
                .secrets
                .get(*name)
                .ok_or_else(|| anyhow!("no secret {name}"))?
                .expose()
                .to_string()),
            _ => Err(anyhow!("unknown reference ${{{reference}}}")),
        }
    }
}

/// How the supervisor runs one native service.
pub(crate) fn service_unit(plan: &ServicePlan, state: &StateDir, refs: &Refs<'_>) -> Result<UnitSpec> {
    let mut spec = supervised(plan, state, program(plan));
    spec.args = plan.command[1..].to_vec();
    spec.env = resolved_env(plan, refs)?;
    spec.stop_signal = signal(&plan.stop_signal);
    spec.stop_timeout = plan.stop_timeout;
    Ok(spec)
}

/// Where a service in a container comes from: the lab, the image (the
/// user's, checked to exist, or the packed program's) and prodhome's own
/// executable, which runs each life of the container for the supervisor.
pub(crate) struct ContainerRun<'a> {
    pub(crate) lab: &'a str,
    pub(crate) image: &'a str,
    pub(crate) shim: &'a Path,
}

/// Longer than the engine's own stop of the container, so that the
/// supervisor's SIGKILL of the shim never comes first.
const SHIM_STOP_MARGIN: Duration = Duration::from_secs(10);

/// How the supervisor runs one service in a container: the shim
/// (`prodhome __service-container NAME`) with the container's spec in its
/// environment; env references resolve to in-network addresses; the ports
/// its tcp and http probes name are published on 127.0.0.1, where the
/// supervisor's probes look (`services::spawn` makes a tcp probe there
/// the engine's `probe_published`).
pub(crate) fn container_unit(
    plan: &ServicePlan,
    state: &StateDir,
    refs: &Refs<'_>,
    run: &ContainerRun<'_>,
) -> Result<(UnitSpec, engine::ServiceContainer)> {
    let in_network = Refs {
        lab_network: Some(run.lab),
        ..*refs
    };
    let cmd = match plan.run {
        // A packed program is the image's entrypoint: the rest are its arguments.
        lab::ServiceRun::Packed { .. } => Some(plan.command[1..].to_vec()),
        _ => (!plan.command.is_empty()).then(|| plan.command.clone()),
    };
    let container = engine::ServiceContainer {
        lab: run.lab.into(),
        service: plan.name.clone(),
        image: run.image.into(),
        cmd,
        env: resolved_env(plan, &in_network)?,
        ports: probed_ports(plan),
        stop_signal: plan.stop_signal.clone(),
        stop_timeout_secs: plan.stop_timeout.as_secs().max(1),
    };
    let mut spec = supervised(plan, state, run.shim.to_owned());
    spec.args = vec!["__service-container".into(), container.name()];
    spec.env = vec![(
        engine::service::SPEC_VAR.into(),
        serde_json::to_string(&container)?,
    )];
    spec.stop_timeout = plan.stop_timeout + SHIM_STOP_MARGIN;
    Ok((spec, container))
}

/// The ports a service's tcp and http probes connect to.
fn probed_ports(plan: &ServicePlan) -> Vec<u16> {
    let mut ports: Vec<u16> = [&plan.ready, &plan.live]
        .into_iter()
        .flatten()
        .filter_map(|probe| match &probe.check {
            ProbeCheckPlan::Tcp(port) => Some(*port),
            ProbeCheckPlan::Http(url) => http_port(url),
            ProbeCheckPlan::Exec(_) => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The port of an `http://host[:port]/…` URL (80 without one).
fn http_port(url: &str) -> Option<u16> {
    let authority = url.strip_prefix("http://")?.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None => Some(80),
    }
}

/// The service's environment, every `${...}` resolved.
fn resolved_env(plan: &ServicePlan, refs: &Refs<'_>) -> Result<Vec<(String, String)>> {
    plan.env
        .iter()
        .map(|(k, v)| Ok((k.clone(), refs.resolve(v)?)))
        .collect()
}

/// What every service's unit shares: its log, workdir, restart policy
/// and probes.
fn supervised(plan: &ServicePlan, state: &StateDir, program: PathBuf) -> UnitSpec {
    let mut spec = UnitSpec::new(&plan.name, program, state.node_log(&plan.name));
    spec.cwd = Some(plan.workdir.clone());
    spec.policy = RestartPolicy {
        mode: match plan.restart {
            RestartPlan::No => RestartMode::No,
            RestartPlan::OnFailure => RestartMode::OnFailure,
            RestartPlan::Always => RestartMode::Always,
        },
        max_restarts: plan.max_restarts,
        ..RestartPolicy::default()
    };
    spec.ready = plan.ready.as_ref().map(probe);
    spec.live = plan.live.as_ref().map(probe);
    spec
}

/// The program a service runs: `./app` and `bin/app` are relative to the
/// service's workdir (an absolute path stays as it is); a bare name is
/// looked up on PATH when it starts.
pub(crate) fn program(plan: &ServicePlan) -> PathBuf {
    let program = PathBuf::from(&plan.command[0]);
    if program.components().count() > 1 {
        plan.workdir.join(program)
    } else {
        program
    }
}

fn probe(plan: &ProbePlan) -> ProbeSpec {
    let check = match &plan.check {
        ProbeCheckPlan::Tcp(port) => ProbeCheck::Tcp { port: *port },
        ProbeCheckPlan::Http(url) => ProbeCheck::Http { url: url.clone() },
        ProbeCheckPlan::Exec(argv) => ProbeCheck::Exec { argv: argv.clone() },
    };
    ProbeSpec {
        interval: plan.interval,
        timeout: plan.timeout,
        failure_threshold: plan.threshold,
        ..ProbeSpec::new(check)
    }
}

fn signal(name: &str) -> Signal {
    name.parse().unwrap_or(Signal::SIGTERM)
}

/// The condition a `depends_on` entry waits for.
pub(crate) fn condition(c: DependsOn) -> Condition {
    match c {
        DependsOn::Started => Condition::Started,
        DependsOn::Ready => Condition::Ready,
        DependsOn::Healthy => Condition::Healthy,
    }
}

/// Every link name `plan` needs, in a stable order: each node's client
/// path, then each replication path once.
pub(crate) fn link_names(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = plan.nodes.iter().map(|n| clients_link(&n.name)).collect();
    for r in &plan.replications {
        for s in &r.subscribers {
            let name = replication_link(&r.publisher, s);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Each link's options: listening on its kept port, forwarding to its
/// node's (a replication link to its publisher's).
pub(crate) fn link_options(plan: &Plan, ports: &BTreeMap<String, u16>) -> Result<Vec<proxy::LinkOptions>> {
    let port = |name: &str| {
        ports
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("no port for {name} yet: run `prodhome up` first"))
    };
    let mut out = Vec::new();
    for name in link_names(plan) {
        let upstream_node = match name.split_once("->") {
            Some(("clients", node)) => node,
            Some((publisher, _)) => publisher,
            None => continue,
        };
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, port(upstream_node)?));
        let mut opts = proxy::LinkOptions::new(name.clone(), upstream);
        opts.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port(&name)?));
        opts.seed = plan.seed;
        out.push(opts);
    }
    Ok(out)
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
    pub(crate) addr: SocketAddr,
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
            host: n.addr.ip().to_string(),
            port: n.addr.port(),
            user: pg::SUPERUSER.into(),
            password: n.spec.credentials.superuser.clone(),
            dbname: pg::DATABASE.into(),
            postmaster_pid: n.pid,
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

#[cfg(test)]
mod tests;
