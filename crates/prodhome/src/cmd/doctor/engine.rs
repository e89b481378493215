//! The doctor's question about the Docker Engine: is one there, new enough
//! and ours to use; for a lab with `backend = "docker"` a missing engine is a
//! failure, otherwise a note. Kernel features the engine's faults would
//! need and this machine lacks are listed, not hidden.

use lab::{Backend, Plan};

use super::sinks::Finding;
use crate::context::runtime;

/// The engine check, and notes on unsupported kernel features.
pub(super) fn check(plan: &Plan) -> (Finding, Vec<String>) {
    let needed = plan.backend == Backend::Docker;
    let connected = runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(engine::Engine::connect()).map_err(|e| e.to_string()));
    match connected {
        Ok(engine) => {
            let found = (
                true,
                format!(
                    "docker engine {} (API {}) answers{}",
                    engine.server_version(),
                    engine.api_version(),
                    if needed {
                        "; the lab's nodes run in containers"
                    } else {
                        ""
                    }
                ),
            );
            let notes = if needed {
                engine.capabilities().unsupported()
            } else {
                Vec::new()
            };
            (found, notes)
        }
        Err(e) if needed => (
            (false, format!("docker engine (backend = \"docker\"): {e}")),
            Vec::new(),
        ),
        Err(e) => {
            let what = format!(
                "docker engine: not usable, which only `backend = \"docker\"` needs: {}",
                first_line(&e)
            );
            ((true, what), Vec::new())
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
