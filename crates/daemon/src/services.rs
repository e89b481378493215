//! App services: the lab's `[service.NAME]`s (made units by
//! `assemble::service_unit`) start as soon as what they depend on is
//! started, ready or healthy — independent services start together.

use std::time::Duration;

use anyhow::{Result, anyhow};
use lab::ServicePlan;
use supervisor::{Condition, UnitHandle, UnitStatus};

use crate::assemble::condition;
use crate::backend::Node;

/// Starts every service once its dependencies hold — in waves, so that a
/// dependency was started before anyone waits on it, and in parallel within
/// a wave — and waits until each is ready. The error names the service,
/// what it waited for or its probe, and the end of its log.
pub(crate) async fn start_all(
    plans: &[ServicePlan],
    nodes: &[Node],
    services: &[UnitHandle],
    timeout: Duration,
) -> Result<()> {
    let units = Units { nodes, services };
    let mut names: Vec<&str> = nodes.iter().map(Node::name).collect();
    names.extend(services.iter().map(UnitHandle::name));
    names.sort();
    let graph: Vec<(String, Vec<(String, Condition)>)> = names
        .into_iter()
        .map(|name| {
            let deps = plans
                .iter()
                .find(|p| p.name == name)
                .map(|p| {
                    p.depends_on
                        .iter()
                        .map(|(d, c)| (d.clone(), condition(*c)))
                        .collect()
                })
                .unwrap_or_default();
            (name.to_string(), deps)
        })
        .collect();
    let waves = supervisor::start_order(&graph).map_err(|e| anyhow!("{e}"))?;
    for wave in waves {
        let jobs = wave
            .iter()
            .filter_map(|name| plans.iter().find(|p| &p.name == name))
            .map(|plan| start_one(plan, &units, timeout));
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

/// The nodes and services a service may depend on.
struct Units<'a> {
    nodes: &'a [Node],
    services: &'a [UnitHandle],
}

impl Units<'_> {
    fn service(&self, name: &str) -> Option<&UnitHandle> {
        self.services.iter().find(|u| u.name() == name)
    }

    async fn wait_for(&self, name: &str, condition: Condition, timeout: Duration) -> Result<(), UnitStatus> {
        if let Some(node) = self.nodes.iter().find(|n| n.name() == name) {
            return node.wait_for(condition, timeout).await;
        }
        let unit = self.service(name).expect("the lab checked depends_on names");
        unit.wait_for(condition, timeout).await.map(|_| ())
    }
}

async fn start_one(plan: &ServicePlan, units: &Units<'_>, timeout: Duration) -> Result<()> {
    let unit = units.service(&plan.name).expect("every service has a unit");
    for (dep, cond) in &plan.depends_on {
        units
            .wait_for(dep, condition(*cond), timeout)
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
