//! Phase 1 of `up` for `prodhome controller`: the nodes are servers an
//! engine (compose, Swarm, Kubernetes) runs, so nothing is created on this
//! machine. Their passwords are the secret files the engine mounts, each
//! is reached by its host name, and the proxy links run here: each node's
//! client path on 127.0.0.1 (hum goes through it), each replication path
//! on every interface at a port fixed by the lab's order
//! ([`lab::Plan::replication_paths`]), where subscriptions connect to this
//! process by its host name on the engine's network. Faults can then cut
//! or slow a link; a node itself is the engine's.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Result;
use lab::Plan;
use model::Event;
use tokio::sync::mpsc;

use super::Prepared;
use crate::backend;
use crate::external::ExternalLab;
use crate::layout::StateDir;
use crate::links::{self, LinkHandle, clients_link, replication_link};
use crate::ports;

/// Phase 1 for external nodes: secrets from their files, node specs by
/// host name, the links, the nodes handed to the external backend.
pub(super) async fn prepare(
    plan: &Plan,
    state: &StateDir,
    external: &ExternalLab,
    events: &mpsc::Sender<Event>,
) -> Result<Prepared> {
    external.save(state)?;
    let specs = external.node_specs(plan, state)?;
    let named_secrets = external.named_secrets(plan)?;
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

/// Every node's client path on 127.0.0.1 (a kept port), every replication
/// path on every interface at its fixed port; each follows its upstream's
/// host name, which resolves anew when the engine restarts a node.
async fn start_links(plan: &Plan, state: &StateDir, external: &ExternalLab) -> Result<links::Links> {
    let client_links: Vec<String> = plan.nodes.iter().map(|n| clients_link(&n.name)).collect();
    let kept = ports::resolve(plan, state, &client_links)?;
    // Each link's options, with the node whose host it forwards to.
    let mut wanted: Vec<(proxy::LinkOptions, &str)> = Vec::new();
    for (name, node) in client_links.iter().zip(&plan.nodes) {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, kept[name]));
        wanted.push((link_options(plan, name.clone(), listen), &node.name));
    }
    let paths = match external.replication_by_engine {
        true => Vec::new(),
        false => plan.replication_paths(),
    };
    for (i, (publisher, subscriber)) in paths.iter().enumerate() {
        let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, external.link_port(i)));
        wanted.push((
            link_options(plan, replication_link(publisher, subscriber), listen),
            publisher,
        ));
    }
    let follow: Vec<(String, &str)> = wanted.iter().map(|(o, node)| (o.name.clone(), *node)).collect();
    let links = links::start(wanted.into_iter().map(|(o, _)| o).collect()).await?;
    for (name, node) in follow {
        if let Some(LinkHandle::Local(link)) = links.get(&name) {
            tokio::spawn(proxy::follow_upstream(
                link.clone(),
                external.hosts[node].clone(),
                external.node_port,
            ));
        }
    }
    Ok(links)
}

/// A link listening at `listen`, its upstream unknown until its host name
/// resolves.
fn link_options(plan: &Plan, name: String, listen: SocketAddr) -> proxy::LinkOptions {
    let mut opts = proxy::LinkOptions::new(name, proxy::UNRESOLVED);
    opts.listen = listen;
    opts.seed = plan.seed;
    opts
}
