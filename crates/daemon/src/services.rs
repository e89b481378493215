//! App services: the lab's `[service.NAME]`s as supervised units. Their env
//! references are resolved here (`${postgres.NODE.url}` goes through the
//! node's client proxy, so client-path faults reach apps too), and each one
//! starts as soon as what it depends on is started, ready or healthy —
//! independent services start together.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use lab::{DependsOn, ProbeCheckPlan, ProbePlan, RestartPlan, ServicePlan};
use model::Secret;
use nix::sys::signal::Signal;
use pg::NodeSpec;
use supervisor::{Condition, ProbeCheck, ProbeSpec, RestartMode, RestartPolicy, UnitHandle, UnitSpec};

use crate::layout::StateDir;
use crate::links::Links;

/// What env references resolve against.
pub(crate) struct Refs<'a> {
    pub(crate) nodes: &'a [NodeSpec],
    pub(crate) links: &'a Links,
    pub(crate) secrets: &'a BTreeMap<String, Secret>,
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
                let port = self.links.client_port(node).unwrap_or(spec.port);
                let password = spec.credentials.superuser.expose();
                Ok(match *attr {
                    "url" => format!(
                        "postgresql://{}:{password}@127.0.0.1:{port}/{}",
                        pg::SUPERUSER,
                        pg::DATABASE
                    ),
                    "host" => "127.0.0.1".into(),
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

/// How the supervisor runs one service.
pub(crate) fn unit(plan: &ServicePlan, state: &StateDir, refs: &Refs<'_>) -> Result<UnitSpec> {
    let mut spec = UnitSpec::new(&plan.name, program(plan), state.node_log(&plan.name));
    spec.args = plan.command[1..].to_vec();
    spec.env = plan
        .env
        .iter()
        .map(|(k, v)| Ok((k.clone(), refs.resolve(v)?)))
        .collect::<Result<_>>()?;
    spec.cwd = Some(plan.workdir.clone());
    spec.stop_signal = signal(&plan.stop_signal);
    spec.stop_timeout = plan.stop_timeout;
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
    Ok(spec)
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

fn condition(c: DependsOn) -> Condition {
    match c {
        DependsOn::Started => Condition::Started,
        DependsOn::Ready => Condition::Ready,
        DependsOn::Healthy => Condition::Healthy,
    }
}

/// Starts every service once its dependencies hold — in waves, so that a
/// dependency was started before anyone waits on it, and in parallel within
/// a wave — and waits until each is ready. The error names the service,
/// what it waited for or its probe, and the end of its log.
pub(crate) async fn start_all(
    plans: &[ServicePlan],
    units: &BTreeMap<String, UnitHandle>,
    timeout: Duration,
) -> Result<()> {
    let graph: Vec<(String, Vec<(String, Condition)>)> = units
        .keys()
        .map(|name| {
            let deps = plans
                .iter()
                .find(|p| &p.name == name)
                .map(|p| {
                    p.depends_on
                        .iter()
                        .map(|(d, c)| (d.clone(), condition(*c)))
                        .collect()
                })
                .unwrap_or_default();
            (name.clone(), deps)
        })
        .collect();
    let waves = supervisor::start_order(&graph).map_err(|e| anyhow!("{e}"))?;
    for wave in waves {
        let jobs = wave
            .iter()
            .filter_map(|name| plans.iter().find(|p| &p.name == name))
            .map(|plan| start_one(plan, units, timeout));
        let errors: Vec<String> = futures_util::future::join_all(jobs)
            .await
            .into_iter()
            .filter_map(|r| r.err())
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            return Err(anyhow!("{}", errors.join("\n")));
        }
    }
    Ok(())
}

async fn start_one(
    plan: &ServicePlan,
    units: &BTreeMap<String, UnitHandle>,
    timeout: Duration,
) -> Result<()> {
    let unit = &units[&plan.name];
    for (dep, cond) in &plan.depends_on {
        units[dep]
            .wait_for(condition(*cond), timeout)
            .await
            .map_err(|status| {
                anyhow!(
                    "service {} waited for {dep} to be {} but it is {}",
                    plan.name,
                    condition(*cond).as_str(),
                    status.state.as_str()
                )
            })?;
    }
    unit.start().await;
    unit.wait_ready(timeout).await.map_err(|status| {
        if status.state == supervisor::UnitState::Failed && !status.ready_once {
            return anyhow!(
                "service {} did not become ready: it failed on its first start, {}. It was not restarted: it would fail the same way \
                 again; fix the cause and run `up` again. The end of its log ({}):\n{}",
                plan.name,
                first_exit(status.last_exit, &plan.command[0]),
                unit.log_path().display(),
                unit.log_tail(12).join("\n")
            );
        }
        let why = status
            .last_probe_error
            .clone()
            .unwrap_or_else(|| match status.last_exit {
                Some(exit) => format!("it exited: {exit}"),
                None => format!("it is {}", status.state.as_str()),
            });
        anyhow!(
            "service {} did not become ready: {why}. The end of its log ({}):\n{}",
            plan.name,
            unit.log_path().display(),
            unit.log_tail(12).join("\n")
        )
    })
}

/// A service's exit before it was ever ready, and what it usually means.
fn first_exit(exit: Option<model::Exit>, program: &str) -> String {
    let Some(exit) = exit else {
        return "it stopped".into();
    };
    match (exit.code, exit.signal) {
        (Some(127), None) => {
            format!("it ended with {exit}: the program {program:?} was not found (or could not start)")
        }
        (Some(126), None) => format!("it ended with {exit}: the program {program:?} is not executable"),
        (_, Some(_)) => format!("it was {exit} before it was ready"),
        _ => format!("it ended with {exit} before it was ready"),
    }
}
