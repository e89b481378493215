//! An upstream by host name: a container's or a Kubernetes pod's address
//! changes when it restarts, so a link to it follows the name.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::Link;

/// How often an upstream's name is resolved again: a container that
/// restarts, or is cut off the network and put back, may get a new address.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// Where connections go before a name first resolves: the discard port of
/// the loopback, where nothing listens, so a client fails at once as if
/// the upstream server were down.
pub const UNRESOLVED: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9);

/// Resolves `host` now and every second, pointing the link's new
/// connections at its current IPv4 address; a name that does not resolve
/// (its container stopped) leaves the last address in place. Runs until
/// aborted.
pub async fn follow_upstream(link: Link, host: String, port: u16) {
    let target = format!("{host}:{port}");
    loop {
        if let Ok(addrs) = tokio::net::lookup_host(&target).await
            && let Some(addr) = addrs.into_iter().find(SocketAddr::is_ipv4)
            && addr != link.upstream()
        {
            link.set_upstream(addr);
        }
        tokio::time::sleep(RESOLVE_EVERY).await;
    }
}
