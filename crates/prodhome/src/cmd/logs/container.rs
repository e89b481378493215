//! A node's log read through the Docker Engine: for a node whose log files
//! are not on the host (a container with its own data directory, or one
//! whose host files were removed), what the container printed is its log.

use std::io::Write;

use anyhow::Result;
use futures_util::StreamExt;

use super::filter::Filter;
use crate::context::{Context, runtime};

/// Prints (with `follow`, streams) the log of `unit`'s container; `false`
/// when there is no engine or no such container, so the caller can say
/// what is missing instead.
pub(super) fn print(ctx: &Context, unit: &str, follow: bool, filter: &Filter) -> Result<bool> {
    let name = engine::lab::container_name(&ctx.plan.name, unit);
    runtime()?.block_on(async {
        let Ok(engine) = engine::Engine::connect().await else {
            return Ok(false);
        };
        let ours = engine.containers(&ctx.plan.name).await.unwrap_or_default();
        if !ours.contains(&name) {
            return Ok(false);
        }
        let mut out = std::io::stdout().lock();
        let mut chunks = std::pin::pin!(engine.logs(&name, follow, None));
        while let Some(chunk) = chunks.next().await {
            super::print(&mut out, "", chunk?.as_bytes(), None, filter)?;
            out.flush()?;
        }
        Ok(true)
    })
}
