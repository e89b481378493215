//! The proxy links `up` puts on every path a fault may cut: in front of each
//! node for clients (`clients->NODE`), and on each replication link
//! (`PUBLISHER->SUBSCRIBER`: the subscription connects through it). Their
//! ports are kept in `ports.json`, because a subscription remembers the
//! port it connects to.
//!
//! A link is [`LinkHandle::Local`] (a `proxy::Link` in this process, on
//! 127.0.0.1) or [`LinkHandle::Remote`]: a replication link of a Docker lab,
//! carried by the lab's link proxy container on the lab network and driven
//! through its control endpoint. Both answer the same operations, so faults
//! and status have one code path.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use proxy::control::ControlClient;
use proxy::{Fault, FaultKind, Link, LinkOptions};

/// Every link of a lab, by name, and the link proxy container carrying the
/// remote ones (if any).
#[derive(Default, Clone)]
pub(crate) struct Links {
    pub by_name: BTreeMap<String, LinkHandle>,
    proxy: Option<Arc<LinkProxy>>,
}

/// One link, wherever it runs.
#[derive(Clone)]
pub(crate) enum LinkHandle {
    Local(Link),
    Remote(RemoteLink),
}

/// A link in a link proxy container.
#[derive(Clone)]
pub(crate) struct RemoteLink {
    pub(crate) name: String,
    pub(crate) client: ControlClient,
    /// Where a container on the lab network connects: the proxy's name.
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// What a docker lab's link proxy container carries (`assemble::link_proxy`).
pub(crate) struct LinkProxyPlan {
    /// Its control endpoint's port on 127.0.0.1 (kept, so a restart of the
    /// container publishes it at the same place).
    pub(crate) control_port: u16,
    pub(crate) links: Vec<proxy::control::RemoteLinkSpec>,
}

/// The container carrying a lab's remote links, removed by [`Links::shutdown`].
pub(crate) struct LinkProxy {
    pub(crate) engine: Arc<engine::Engine>,
    pub(crate) container: String,
    /// Its control token, new on every start: gone with the container.
    pub(crate) token_file: std::path::PathBuf,
    /// The task that starts it again when it dies (see the Docker backend).
    pub(crate) watcher: tokio::task::JoinHandle<()>,
    /// How many times it was started again and answers: its links carry
    /// no fault then until they are applied again.
    pub(crate) restarts: tokio::sync::watch::Receiver<u64>,
}

/// The client path to `node`.
pub(crate) fn clients_link(node: &str) -> String {
    format!("clients->{node}")
}

/// The replication link from `publisher` to `subscriber`.
pub(crate) fn replication_link(publisher: &str, subscriber: &str) -> String {
    format!("{publisher}->{subscriber}")
}

/// Starts every local link as `assemble::link_options` says.
pub(crate) async fn start(options: Vec<LinkOptions>) -> Result<Links> {
    let mut links = Links::default();
    for opts in options {
        let name = opts.name.clone();
        let link = proxy::start(opts)
            .await
            .with_context(|| format!("starting the proxy link {name}"))?;
        links.by_name.insert(name, LinkHandle::Local(link));
    }
    Ok(links)
}

impl LinkHandle {
    /// Applies `fault` now (`proxy::Link::apply`).
    pub(crate) async fn apply(&self, fault: Fault) -> Result<(), String> {
        match self {
            LinkHandle::Local(link) => {
                link.apply(fault);
                Ok(())
            }
            LinkHandle::Remote(r) => r.client.apply(&r.name, fault).await.map_err(|e| e.to_string()),
        }
    }

    /// Removes one kind of fault.
    pub(crate) async fn clear(&self, kind: FaultKind) -> Result<(), String> {
        match self {
            LinkHandle::Local(link) => {
                link.clear(kind);
                Ok(())
            }
            LinkHandle::Remote(r) => r.client.clear(&r.name, kind).await.map_err(|e| e.to_string()),
        }
    }

    /// Removes every fault.
    pub(crate) async fn heal(&self) -> Result<(), String> {
        match self {
            LinkHandle::Local(link) => {
                link.heal();
                Ok(())
            }
            LinkHandle::Remote(r) => r.client.heal(Some(&r.name)).await.map_err(|e| e.to_string()),
        }
    }

    /// The port on this machine's 127.0.0.1 a local link listens on.
    pub(crate) fn local_port(&self) -> Option<u16> {
        match self {
            LinkHandle::Local(link) => Some(link.addr().port()),
            LinkHandle::Remote(_) => None,
        }
    }

    /// Where a container on the lab network reaches a remote link.
    pub(crate) fn lab_network_addr(&self) -> Option<(&str, u16)> {
        match self {
            LinkHandle::Local(_) => None,
            LinkHandle::Remote(r) => Some((&r.host, r.port)),
        }
    }
}

impl Links {
    pub(crate) fn get(&self, name: &str) -> Option<&LinkHandle> {
        self.by_name.get(name)
    }

    /// Changes each time the link proxy container was started again (see
    /// [`LinkProxy::restarts`]); `None` without one.
    pub(crate) fn proxy_restarts(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.proxy.as_ref().map(|p| p.restarts.clone())
    }

    /// Adds the links `proxy` carries.
    pub(crate) fn add_remote(&mut self, proxy: LinkProxy, links: Vec<RemoteLink>) {
        for link in links {
            self.by_name.insert(link.name.clone(), LinkHandle::Remote(link));
        }
        self.proxy = Some(Arc::new(proxy));
    }

    /// The port clients reach `node` at through its proxy.
    pub(crate) fn client_port(&self, node: &str) -> Option<u16> {
        self.get(&clients_link(node)).and_then(LinkHandle::local_port)
    }

    /// Removes every link fault (a link proxy that does not answer has
    /// nothing to heal: its links are down with it).
    pub(crate) async fn heal_all(&self) {
        for link in self.by_name.values() {
            let _ = link.heal().await;
        }
    }

    /// Removes the link proxy container and its token (the local links end
    /// with the daemon).
    pub(crate) async fn shutdown(&self) {
        if let Some(proxy) = &self.proxy {
            proxy.watcher.abort();
            let _ = proxy.engine.remove(&proxy.container).await;
            let _ = std::fs::remove_file(&proxy.token_file);
        }
    }
}
