//! `prodhome link-serve` (hidden): what runs inside a Docker lab's link
//! proxy container. The daemon starts it (see the daemon's Docker backend)
//! and talks to it only through its control endpoint.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use proxy::control::{LinkServerOptions, RemoteLinkSpec};

use crate::context::runtime;

pub(crate) fn run(control: u16, token_file: &Path, seed: u64, links: Vec<RemoteLinkSpec>) -> Result<i32> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the control token {}", token_file.display()))?;
    let token = token.trim();
    if token.is_empty() {
        bail!("the control token file {} is empty", token_file.display());
    }
    let opts = LinkServerOptions {
        // Inside the container's own network namespace: the engine publishes
        // this port on the host's 127.0.0.1 only.
        control: SocketAddr::from((Ipv4Addr::UNSPECIFIED, control)),
        token: model::Secret::new(token),
        seed,
        links,
    };
    runtime()?.block_on(proxy::control::serve_links(opts))?;
    Ok(0)
}
