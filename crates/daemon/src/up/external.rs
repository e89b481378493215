//! Phase 1 of `up` for `prodhome controller`: the nodes are servers an
//! engine (compose, Swarm, Kubernetes) runs, so nothing is created on this
//! machine. Their passwords are the secret files the engine mounts, each
//! is reached by its host name, and the proxy links run here: each node's
//! client path on 127.0.0.1 (hum goes through it), each replication path
//! on every interface at a port fixed by the lab's order
//! ([`lab::Plan::replication_paths`]), where subscriptions connect to this
//! process by its host name on the engine's network. Faults can then cut
//! or slow a link; a node itself is the engine's.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use lab::Plan;
use model::{Event, Secret};
use pg::{Credentials, NodeSpec};
use tokio::sync::mpsc;

use super::Prepared;
use crate::backend;
use crate::layout::StateDir;
use crate::links::{self, LinkHandle, clients_link, replication_link};
use crate::ports;

/// The controller's nodes and where it serves (see the export crate's
/// contract with the controller).
#[derive(Debug, Clone)]
pub struct ExternalLab {
    /// Each node's host name on the engine's network.
    pub hosts: BTreeMap<String, String>,
    /// The port every node listens on there.
    pub node_port: u16,
    /// Where the engine mounts each secret as a file: `NODE-superuser`,
    /// `NODE-replication`, `secret-NAME`.
    pub secrets_dir: PathBuf,
    /// The control API and dashboard: every interface of the container
    /// (the engine publishes it on the host's 127.0.0.1). Replication link
    /// `i` (in [`lab::Plan::replication_paths`] order) listens on the port
    /// after it plus `i`.
    pub listen: SocketAddr,
    /// This process's host name on the engine's network, where
    /// subscriptions reach the replication links.
    pub advertise: String,
}

impl ExternalLab {
    /// The port replication link `index` listens on.
    pub fn link_port(&self, index: usize) -> u16 {
        self.listen.port() + 1 + index as u16
    }
}

/// Phase 1 for external nodes: secrets from their files, node specs by
/// host name, the links, the nodes handed to the external backend.
pub(super) async fn prepare(
    plan: &Plan,
    state: &StateDir,
    external: &ExternalLab,
    events: &mpsc::Sender<Event>,
) -> Result<Prepared> {
    let specs = node_specs(plan, state, external)?;
    let named_secrets = named_secrets(plan, &external.secrets_dir)?;
    let links = start_links(plan, state, external).await?;
    let nodes = specs
        .iter()
        .map(|spec| backend::external::watch(spec.clone(), &external.advertise, events.clone()))
        .collect();
    Ok(Prepared {
        specs,
        spares: None,
        named_secrets,
        links,
        nodes,
        images: Default::default(),
    })
}

fn node_specs(plan: &Plan, state: &StateDir, external: &ExternalLab) -> Result<Vec<NodeSpec>> {
    let dir = &external.secrets_dir;
    plan.nodes
        .iter()
        .map(|node| {
            let host = external.hosts.get(&node.name).ok_or_else(|| {
                anyhow!(
                    "PRODHOME_NODE_HOSTS names no host for node {}; give every node as NODE=HOST (it has {})",
                    node.name,
                    external.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            Ok(NodeSpec {
                name: node.name.clone(),
                data_dir: state.data_dir(&node.name),
                socket_dir: state.socket_dir(&node.name),
                port: external.node_port,
                settings: node.settings.clone(),
                credentials: Credentials {
                    superuser: read_secret(dir, &format!("{}-superuser", node.name))?,
                    replication: read_secret(dir, &format!("{}-replication", node.name))?,
                },
                remote: Some(host.clone()),
            })
        })
        .collect()
}

/// The lab's `[secret.NAME]`s, from the files the engine mounts.
fn named_secrets(plan: &Plan, dir: &Path) -> Result<BTreeMap<String, Secret>> {
    plan.secrets
        .iter()
        .map(|s| {
            let file = format!("secret-{}", s.name.replace('_', "-"));
            Ok((s.name.clone(), read_secret(dir, &file)?))
        })
        .collect()
}

/// One secret file's value (a final newline is not part of it).
fn read_secret(dir: &Path, name: &str) -> Result<Secret> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the secret {} (the engine mounts each of the export's secrets/ files there)",
            path.display()
        )
    })?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    if value.is_empty() {
        bail!("the secret {} is empty", path.display());
    }
    Ok(Secret::new(value))
}

/// Every node's client path on 127.0.0.1 (a kept port), every replication
/// path on every interface at its fixed port; each follows its upstream's
/// host name, which resolves anew when the engine restarts a node.
async fn start_links(plan: &Plan, state: &StateDir, external: &ExternalLab) -> Result<links::Links> {
    let client_links: Vec<String> = plan.nodes.iter().map(|n| clients_link(&n.name)).collect();
    let kept = ports::resolve(plan, state, &client_links)?;
    let mut options = Vec::new();
    let mut upstreams = Vec::new();
    for (name, node) in client_links.iter().zip(&plan.nodes) {
        let mut opts = proxy::LinkOptions::new(name.clone(), proxy::UNRESOLVED);
        opts.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, kept[name]));
        options.push(opts);
        upstreams.push(node.name.clone());
    }
    for (i, (publisher, subscriber)) in plan.replication_paths().into_iter().enumerate() {
        let name = replication_link(&publisher, &subscriber);
        let mut opts = proxy::LinkOptions::new(name, proxy::UNRESOLVED);
        opts.listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, external.link_port(i)));
        options.push(opts);
        upstreams.push(publisher);
    }
    for opts in &mut options {
        opts.seed = plan.seed;
    }
    let names: Vec<String> = options.iter().map(|o| o.name.clone()).collect();
    let links = links::start(options).await?;
    for (name, node) in names.iter().zip(upstreams) {
        if let Some(LinkHandle::Local(link)) = links.get(name) {
            tokio::spawn(proxy::follow_upstream(
                link.clone(),
                external.hosts[&node].clone(),
                external.node_port,
            ));
        }
    }
    Ok(links)
}
