//! The proxy links `up` puts on every path a fault may cut: in front of each
//! node for clients (`clients->NODE`), and on each replication link
//! (`PUBLISHER->SUBSCRIBER`: the subscription connects through it). Their
//! ports are kept in `ports.json`, because a subscription remembers the
//! port it connects to.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
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

/// Starts every link as `assemble::link_options` says.
pub(crate) async fn start(options: Vec<LinkOptions>) -> Result<Links> {
    let mut links = Links::default();
    for opts in options {
        let name = opts.name.clone();
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
