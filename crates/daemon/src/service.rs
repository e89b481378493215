//! One app service as the rest of the daemon holds it (the lab's list,
//! faults, status, the API's start/stop/restart): its supervisor unit, and
//! for a service in a container, the container and the engine that runs
//! it. Made by `services::spawn`; below everything that uses it.

use std::sync::Arc;

use engine::Engine;
use supervisor::{UnitHandle, UnitStatus};

use crate::backend::native::signal_unit;
use crate::backend::{NodeSignal, NotRunning};

/// One app service, natively or in a container.
#[derive(Clone)]
pub(crate) struct Service {
    unit: UnitHandle,
    container: Option<Boxed>,
}

/// The container a service runs in, and the engine that runs it.
#[derive(Clone)]
struct Boxed {
    engine: Arc<Engine>,
    name: String,
}

impl Service {
    /// A service the supervisor runs on this machine.
    pub(crate) fn native(unit: UnitHandle) -> Service {
        Service {
            unit,
            container: None,
        }
    }

    /// A service whose unit is the shim of container `name`.
    pub(crate) fn in_container(unit: UnitHandle, engine: Arc<Engine>, name: String) -> Service {
        Service {
            unit,
            container: Some(Boxed { engine, name }),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.unit.name()
    }

    /// The supervised process: the service itself, or its container's shim.
    pub(crate) fn unit(&self) -> &UnitHandle {
        &self.unit
    }

    pub(crate) fn status(&self) -> UnitStatus {
        self.unit.status()
    }

    /// The service's container, when it runs in one.
    pub(crate) fn container(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.name.as_str())
    }

    pub(crate) async fn start(&self) {
        self.unit.start().await
    }

    pub(crate) async fn stop(&self) {
        self.unit.stop().await
    }

    pub(crate) async fn restart(&self) {
        self.unit.restart().await
    }

    /// As a node's signal: the process tree natively; the whole container
    /// through the engine (a killed container ends its shim as it ended,
    /// and the supervisor restarts it under its policy).
    pub(crate) fn signal(&self, signal: NodeSignal) -> Result<(), NotRunning> {
        let Some(boxed) = &self.container else {
            return signal_unit(&self.unit, signal);
        };
        self.unit.status().pid.ok_or(NotRunning)?;
        let (engine, name) = (boxed.engine.clone(), boxed.name.clone());
        tokio::spawn(async move {
            let result = match signal {
                NodeSignal::Kill => engine.kill(&name, "SIGKILL").await,
                NodeSignal::Pause => engine.pause(&name).await,
                NodeSignal::Resume => engine.unpause(&name).await,
            };
            if let Err(e) = result {
                tracing::warn!("{signal:?} of container {name}: {e}");
            }
        });
        Ok(())
    }
}
