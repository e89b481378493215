//! `prodhome __service-container NAME`: one life of a containerised
//! service, as the process the daemon's supervisor runs for it. It reads
//! the container's spec from `PRODHOME_CONTAINER_SPEC` (the daemon writes
//! it, references resolved), runs the container through the engine
//! (`engine::Engine::run_service`), prints its log on stdout (the
//! supervisor's rotated service log), and ends as the container ended: a
//! container killed with SIGKILL (a `kill` fault, the OOM killer) ends this
//! process the same way, so the supervisor's restart policy and events see
//! what a native service's would. SIGTERM or SIGINT (the supervisor's stop)
//! stops the container with the service's stop signal and timeout first.

use anyhow::{Context as _, Result, bail};
use engine::service::SPEC_VAR;
use engine::{Engine, ServiceContainer};
use tokio::signal::unix::{SignalKind, signal};

use crate::context::runtime;

pub(crate) fn run(container: &str) -> Result<i32> {
    let text = std::env::var(SPEC_VAR)
        .with_context(|| format!("{SPEC_VAR} is not set: this command is run by prodhome's daemon"))?;
    let spec: ServiceContainer =
        serde_json::from_str(&text).with_context(|| format!("{SPEC_VAR} is not a container spec"))?;
    if spec.name() != container {
        bail!("{SPEC_VAR} describes {}, not {container}", spec.name());
    }
    let code = runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        anyhow::Ok(engine.run_service(&spec, stop, std::io::stdout()).await?)
    })?;
    if code == 128 + 9 {
        // SIGKILL cannot be caught: this ends the process as it ended the
        // container.
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
    Ok(i32::try_from(code).unwrap_or(1))
}
