//! Ports: the lab's fixed ones, or free ones chosen on the first `up` and
//! kept in `ports.json` so a node keeps its port across restarts.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};

use anyhow::{Context, Result, bail};
use lab::Plan;

use crate::layout::{StateDir, write_atomic};

/// Reads the kept ports (empty when none were chosen yet).
pub(crate) fn load(state: &StateDir) -> BTreeMap<String, u16> {
    std::fs::read_to_string(state.ports())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Gives every node a port: the lab's, else the kept one if it is still
/// free, else a new free one; and the same for every name in `links` (the
/// proxy links, whose ports subscriptions remember). Fails, naming the lab
/// file line, when a fixed port is taken by another program.
pub(crate) fn resolve(plan: &Plan, state: &StateDir, links: &[String]) -> Result<BTreeMap<String, u16>> {
    let kept = load(state);
    let mut chosen = BTreeMap::new();
    let mut problems = Vec::new();
    for node in &plan.nodes {
        let port = match node.port {
            Some(port) => {
                if !is_free(port) {
                    let at = node
                        .port_at
                        .as_ref()
                        .map(|l| format!("{l}: "))
                        .unwrap_or_default();
                    problems.push(format!(
                        "{at}postgres.{}.port: port {port} is already in use by another program; \
                         stop that program or choose another port (or remove `port` to let prodhome pick a free one)",
                        node.name
                    ));
                }
                port
            }
            None => match kept.get(&node.name) {
                Some(&port) if is_free(port) && reserve(port) => port,
                _ => free_port(chosen.values().copied().collect::<Vec<_>>().as_slice())?,
            },
        };
        chosen.insert(node.name.clone(), port);
    }
    for link in links {
        let port = match kept.get(link) {
            Some(&port) if is_free(port) && !chosen.values().any(|&p| p == port) && reserve(port) => port,
            _ => free_port(chosen.values().copied().collect::<Vec<_>>().as_slice())?,
        };
        chosen.insert(link.clone(), port);
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    if chosen != kept {
        save(state, &chosen)?;
    }
    Ok(chosen)
}

/// Writes `ports.json`.
fn save(state: &StateDir, ports: &BTreeMap<String, u16>) -> Result<()> {
    write_atomic(
        &state.ports(),
        serde_json::to_string_pretty(ports)?.as_bytes(),
        0o644,
    )
    .with_context(|| format!("writing {}", state.ports().display()))
}

/// Gives every node with no port of its own and none kept a free one and
/// keeps it; checks nothing else (a lab of the same file may be running
/// here, holding its ports). Returns every kept port.
pub(crate) fn keep_node_ports(plan: &Plan, state: &StateDir) -> Result<BTreeMap<String, u16>> {
    let mut kept = load(state);
    let before = kept.clone();
    for node in plan.nodes.iter().filter(|n| n.port.is_none()) {
        if !kept.contains_key(&node.name) {
            let mut taken: Vec<u16> = kept.values().copied().collect();
            taken.extend(plan.nodes.iter().filter_map(|n| n.port));
            kept.insert(node.name.clone(), free_port(&taken)?);
        }
    }
    if kept != before {
        save(state, &kept)?;
    }
    Ok(kept)
}

/// True when nothing listens on 127.0.0.1:port.
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Where chosen ports come from: below the kernel's ephemeral range
/// (32768 and up), so a port picked for the lab is not also handed out, the
/// next moment, to some program's outgoing connection or `bind(0)`.
const CHOSEN: std::ops::Range<u32> = 20_000..32_000;

/// A free port from `CHOSEN` (20000..32000), not in `taken`.
pub(crate) fn free_port(taken: &[u16]) -> Result<u16> {
    let mut state = (std::process::id() as u64) ^ (model::now_ns() as u64) | 1;
    for _ in 0..500 {
        // xorshift: no need for more than a spread of guesses.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = (CHOSEN.start + (state % (CHOSEN.end - CHOSEN.start) as u64) as u32) as u16;
        if !taken.contains(&port) && is_free(port) && reserve(port) {
            return Ok(port);
        }
    }
    bail!(
        "could not find a free port on 127.0.0.1 in {}..{}",
        CHOSEN.start,
        CHOSEN.end
    )
}

/// Locks on the ports this process chose, held until it exits.
static RESERVED: std::sync::Mutex<Vec<nix::fcntl::Flock<std::fs::File>>> = std::sync::Mutex::new(Vec::new());

/// Claims `port` for this process among prodhome daemons on this machine:
/// a port found free is not yet bound (Postgres binds it a second later),
/// so two labs coming up at once could both pick it, and the loser's server
/// would fail its first start. Each chosen port is a lock file in a shared
/// directory, flocked while the daemon lives (the kernel lets go when it
/// dies, however it dies). Best effort: where the directory cannot be used,
/// every port counts as claimed.
fn reserve(port: u16) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join("prodhome-ports");
    if std::fs::create_dir(&dir).is_ok() {
        // Like /tmp itself: every account may add its own lock files.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{port}.lock")))
    {
        Ok(file) => file,
        Err(_) => return true,
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            RESERVED.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another daemon coming up at the same moment (here: a second claim)
    /// does not get a port this one chose.
    #[test]
    fn a_chosen_port_is_not_chosen_again_while_its_chooser_lives() {
        let port = free_port(&[]).unwrap();
        assert!(!reserve(port), "port {port} was claimed twice");
        let other = free_port(&[]).unwrap();
        assert_ne!(port, other);
    }
}
