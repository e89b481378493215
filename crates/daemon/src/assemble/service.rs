//! The app services' part of the Plan → options mapping: a service's
//! supervisor unit (natively, or prodhome's shim with its container's spec),
//! its `${...}` env references resolved for where it runs, its probes and
//! restart policy.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};
use lab::{DependsOn, ProbeCheckPlan, ProbePlan, RestartPlan, ServicePlan};
use model::Secret;
use nix::sys::signal::Signal;
use pg::NodeSpec;
use std::collections::BTreeMap;
use supervisor::{Condition, ProbeCheck, ProbeSpec, RestartMode, RestartPolicy, UnitSpec};

use crate::layout::StateDir;
use crate::links::Links;

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
pub(crate) const SHIM_STOP_MARGIN: Duration = Duration::from_secs(10);

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
