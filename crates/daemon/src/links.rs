//! The proxy links `up` puts on every path a fault may cut: in front of each
//! node for clients (`clients->NODE`), and on each replication link
//! (`PUBLISHER->SUBSCRIBER`: the subscription connects through it). Their
//! ports are kept in `ports.json`, because a subscription remembers the
//! port it connects to.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context, Result};
use lab::Plan;
use proxy::{Link, LinkOptions};

/// Every link of a lab, by name.
#[derive(Default, Clone)]
pub(crate) struct Links {
    pub by_name: BTreeMap<String, Link>,
}

/// The client path to `node`.
pub(crate) fn clients_link(node: &str) -> String {
    format!("clients->{node}")
}

/// The replication link from `publisher` to `subscriber`.
pub(crate) fn replication_link(publisher: &str, subscriber: &str) -> String {
    format!("{publisher}->{subscriber}")
}

/// Every link name `plan` needs, in a stable order.
pub(crate) fn names(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = plan.nodes.iter().map(|n| clients_link(&n.name)).collect();
    for r in &plan.replications {
        for s in &r.subscribers {
            let name = replication_link(&r.publisher, s);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Starts every link on its kept port, forwarding to the node's port.
pub(crate) async fn start(plan: &Plan, ports: &BTreeMap<String, u16>) -> Result<Links> {
    let mut links = Links::default();
    for name in names(plan) {
        let upstream_node = match name.split_once("->") {
            Some(("clients", node)) => node,
            Some((publisher, _)) => publisher,
            None => continue,
        };
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[upstream_node]));
        let mut opts = LinkOptions::new(name.clone(), upstream);
        opts.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[&name]));
        opts.seed = plan.seed;
        let link = proxy::start(opts)
            .await
            .with_context(|| format!("starting the proxy link {name}"))?;
        links.by_name.insert(name, link);
    }
    Ok(links)
}

impl Links {
    pub(crate) fn get(&self, name: &str) -> Option<&Link> {
        self.by_name.get(name)
    }

    /// The port clients reach `node` at through its proxy.
    pub(crate) fn client_port(&self, node: &str) -> Option<u16> {
        self.get(&clients_link(node)).map(|l| l.addr().port())
    }

    /// Removes every link fault.
    pub(crate) fn heal_all(&self) {
        for link in self.by_name.values() {
            link.heal();
        }
    }
}
