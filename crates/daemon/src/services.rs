//! App services: the lab's `[service.NAME]`s, each a supervisor unit
//! (made by `assemble::service_unit`, or `assemble::container_unit` for one
//! in a container), start as soon as what they depend on is started, ready
//! or healthy — independent services start together.
//!
//! A service in a container is still a supervised unit: its process is
//! prodhome's shim, which runs one life of the container through the
//! engine, so restarts, probes, events and logs are the supervisor's, as
//! natively. Only the faults that act on the process itself (kill, pause)
//! go to the engine instead, which acts on the whole container; stop and
//! restart go through the shim, which stops the container.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use engine::{Engine, ImageSpec};
use lab::{Plan, ServicePlan, ServiceRun};
use model::Event;
use supervisor::{Condition, UnitHandle, UnitStatus};
use tokio::sync::mpsc;

use crate::assemble::{self, ContainerRun, Refs, condition};
use crate::backend::Node;
use crate::layout::StateDir;
use crate::service::Service;

/// The images of a lab's services in containers, found or packed before
/// anything of the lab is created: a missing image stops `up` there.
#[derive(Default)]
pub(crate) struct Images {
    engine: Option<Arc<Engine>>,
    /// service name → image reference.
    by_service: BTreeMap<String, String>,
}

impl Images {
    /// True when no service runs in a container.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_service.is_empty()
    }

    /// One line per image, for `up`'s progress.
    pub(crate) fn describe(&self) -> Vec<String> {
        self.by_service
            .iter()
            .map(|(service, image)| format!("service {service}: image {image}"))
            .collect()
    }
}

/// Checks that every `image` is in the engine and packs every
/// `container = true` program (cached by content); nothing when no
/// service runs in a container.
pub(crate) async fn images(plan: &Plan) -> Result<Images> {
    let boxed: Vec<&ServicePlan> = plan
        .services
        .iter()
        .filter(|s| s.run != ServiceRun::Native)
        .collect();
    if boxed.is_empty() {
        return Ok(Images::default());
    }
    let engine = Engine::connect().await?;
    let mut by_service = BTreeMap::new();
    for service in boxed {
        let image = match &service.run {
            ServiceRun::Image { reference, at } => {
                engine
                    .require_image(reference, &service.name)
                    .await
                    .map_err(|e| anyhow!("{at}: {e}"))?;
                reference.clone()
            }
            _ => pack(&engine, service).await?,
        };
        by_service.insert(service.name.clone(), image);
    }
    Ok(Images {
        engine: Some(Arc::new(engine)),
        by_service,
    })
}

/// The service's program packed into an image of its own.
async fn pack(engine: &Engine, service: &ServicePlan) -> Result<String> {
    let at = &service.command_at;
    // Preflight found it; only a file removed since gets here.
    let program = crate::preflight::locate(service).ok_or_else(|| {
        anyhow!(
            "{at}: service.{}.command: no program {:?}",
            service.name,
            service.command[0]
        )
    })?;
    let program =
        std::fs::canonicalize(&program).with_context(|| format!("{at}: reading {}", program.display()))?;
    let built = engine
        .build_image(&ImageSpec::binary(&program))
        .await
        .map_err(|e| {
            anyhow!(
                "{at}: service.{}: packing {}: {e}",
                service.name,
                program.display()
            )
        })?;
    Ok(built.reference)
}

/// Every service handed to the supervisor (none started yet), its output
/// lines tapped to be counted by level.
pub(crate) fn spawn(
    plan: &Plan,
    state: &StateDir,
    refs: &Refs<'_>,
    images: &Images,
    taps: &pglog::ServiceTaps,
    events: &mpsc::Sender<Event>,
) -> Result<Vec<Service>> {
    let shim = std::env::current_exe().context("finding prodhome's own executable (the container shim)")?;
    let mut services = Vec::new();
    for service in &plan.services {
        let (engine, image) = match (&images.engine, images.by_service.get(&service.name)) {
            (Some(engine), Some(image)) => (engine, image),
            _ => {
                let mut spec = assemble::service_unit(service, state, refs)?;
                spec.line_tap = taps.tap(&service.name);
                services.push(Service::native(supervisor::spawn_unit(spec, events.clone())));
                continue;
            }
        };
        let run = ContainerRun {
            lab: &plan.name,
            image,
            shim: &shim,
        };
        let (mut spec, container) = assemble::container_unit(service, state, refs, &run)?;
        // The shim copies the container's log to its output: counted alike.
        spec.line_tap = taps.tap(&service.name);
        published_probes(&mut spec, engine, &container.name());
        let unit = supervisor::spawn_unit(spec, events.clone());
        services.push(Service::in_container(unit, engine.clone(), container.name()));
    }
    Ok(services)
}

/// A tcp probe of a containerised service through the engine's check of
/// its published port: a bare connect would pass as long as the engine's
/// port proxy listens, whatever the container does.
fn published_probes(spec: &mut supervisor::UnitSpec, engine: &Arc<Engine>, container: &str) {
    for probe in [&mut spec.ready, &mut spec.live].into_iter().flatten() {
        if let supervisor::ProbeCheck::Tcp { port } = probe.check {
            let (engine, container) = (engine.clone(), container.to_owned());
            probe.check = supervisor::ProbeCheck::Custom(Arc::new(move || {
                let (engine, container) = (engine.clone(), container.clone());
                Box::pin(async move { engine.probe_published(&container, port).await })
            }));
        }
    }
}

/// What `leftovers` recognises a service's process by in `/proc`: its
/// program natively, its container's name for the shim.
pub(crate) fn leftover_keys(services: &[Service], plan: &Plan) -> Vec<String> {
    services
        .iter()
        .zip(&plan.services)
        .map(|(s, p)| match s.container() {
            Some(name) => name.to_owned(),
            None => p.command[0].clone(),
        })
        .collect()
}

/// Starts every service once its dependencies hold — in waves, so that a
/// dependency was started before anyone waits on it, and in parallel within
/// a wave — and waits until each is ready. The error names the service,
/// what it waited for or its probe, and the end of its log.
pub(crate) async fn start_all(
    plans: &[ServicePlan],
    nodes: &[Node],
    services: &[Service],
    timeout: Duration,
) -> Result<()> {
    let units = Units { nodes, services };
    let mut names: Vec<&str> = nodes.iter().map(Node::name).collect();
    names.extend(services.iter().map(Service::name));
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
    services: &'a [Service],
}

impl Units<'_> {
    fn service(&self, name: &str) -> Option<&UnitHandle> {
        self.services.iter().find(|s| s.name() == name).map(Service::unit)
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
                first_exit(status.last_exit, plan),
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
fn first_exit(exit: Option<model::Exit>, plan: &ServicePlan) -> String {
    let Some(exit) = exit else {
        return "it stopped".into();
    };
    if plan.run != ServiceRun::Native {
        // The shim ends with its container's exit code (or its own error).
        return format!("its container ended with {exit} before it was ready");
    }
    let program = &plan.command[0];
    match (exit.code, exit.signal) {
        (Some(127), None) => {
            format!("it ended with {exit}: the program {program:?} was not found (or could not start)")
        }
        (Some(126), None) => format!("it ended with {exit}: the program {program:?} is not executable"),
        (_, Some(_)) => format!("it was {exit} before it was ready"),
        _ => format!("it ended with {exit} before it was ready"),
    }
}
