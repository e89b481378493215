//! The proxy links' part of the Plan: their names, the options of the
//! links in this process, and a docker lab's link proxy container's links
//! and control port, all from the ports `ports.json` keeps.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Result, anyhow};
use lab::Plan;
use proxy::control::RemoteLinkSpec;

use crate::links::{LinkProxyPlan, clients_link, replication_link};

/// Every link name `plan` needs, in a stable order: each node's client
/// path, then each replication path once.
pub(crate) fn link_names(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = plan.nodes.iter().map(|n| clients_link(&n.name)).collect();
    names.extend(
        plan.replication_paths()
            .iter()
            .map(|(publisher, subscriber)| replication_link(publisher, subscriber)),
    );
    names
}

/// Each link's options: listening on its kept port, forwarding to its
/// node's (a replication link to its publisher's).
pub(crate) fn link_options(plan: &Plan, ports: &BTreeMap<String, u16>) -> Result<Vec<proxy::LinkOptions>> {
    let port = |name: &str| kept_port(ports, name);
    let mut out = Vec::new();
    for name in link_names(plan) {
        let upstream_node = match name.split_once("->") {
            Some(("clients", node)) => node,
            // A docker lab's replication links run in its link proxy.
            Some(_) if plan.backend == lab::Backend::Docker => continue,
            Some((publisher, _)) => publisher,
            None => continue,
        };
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, port(upstream_node)?));
        let mut opts = proxy::LinkOptions::new(name.clone(), upstream);
        opts.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port(&name)?));
        opts.seed = plan.seed;
        out.push(opts);
    }
    Ok(out)
}

/// The port `ports.json` keeps for `name` (a node or a link).
fn kept_port(ports: &BTreeMap<String, u16>, name: &str) -> Result<u16> {
    ports
        .get(name)
        .copied()
        .ok_or_else(|| anyhow!("no port for {name} yet: run `prodhome up` first"))
}

/// The name `ports.json` keeps a docker lab's link proxy control port under
/// (a node name has no `-`, and a link's name has `->`).
const LINK_PROXY_PORT: &str = "link-proxy";

/// Every name `ports.json` keeps a port for besides the nodes: the links,
/// and a docker lab's link proxy control endpoint.
pub(crate) fn kept_port_names(plan: &Plan) -> Vec<String> {
    let mut names = link_names(plan);
    if has_link_proxy(plan) {
        names.push(LINK_PROXY_PORT.into());
    }
    names
}

fn has_link_proxy(plan: &Plan) -> bool {
    plan.backend == lab::Backend::Docker && plan.replications.iter().any(|r| !r.subscribers.is_empty())
}

/// A docker lab's replication links, for its link proxy container: each
/// listens there on its kept port and forwards to its publisher's
/// container by name, at the port the node listens on. None natively.
pub(crate) fn link_proxy(plan: &Plan, ports: &BTreeMap<String, u16>) -> Result<Option<LinkProxyPlan>> {
    if !has_link_proxy(plan) {
        return Ok(None);
    }
    let port = |name: &str| kept_port(ports, name);
    let mut links: Vec<RemoteLinkSpec> = Vec::new();
    for (publisher, subscriber) in plan.replication_paths() {
        let name = replication_link(&publisher, &subscriber);
        links.push(RemoteLinkSpec {
            port: port(&name)?,
            upstream_host: engine::lab::container_name(&plan.name, &publisher),
            upstream_port: port(&publisher)?,
            name,
        });
    }
    Ok(Some(LinkProxyPlan {
        control_port: port(LINK_PROXY_PORT)?,
        links,
    }))
}
