//! `prodhome controller`: the daemon for nodes it does not start, as the
//! files `prodhome export` writes run it in compose, Swarm and Kubernetes.
//! Its environment is the export's contract (the export crate's `model`
//! module): where each node answers, where the secrets are mounted, where
//! to listen, and its own host name on the engine's network. The lab's
//! `[service.*]`s are the engine's too: the controller does not run them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use daemon::ExternalLab;

use crate::cmd::up;
use crate::context::Context;

/// The port every node listens on in its container (the export's).
const NODE_PORT: u16 = 5432;

pub(crate) fn run(ctx: &Context, timeout: Duration) -> Result<i32> {
    let external = from_env(&|name| std::env::var(name).ok())?;
    eprintln!(
        "prodhome controller: lab {} on {}; nodes at {}",
        ctx.plan.name,
        std::env::var("PRODHOME_ENGINE").unwrap_or_else(|_| "its engine".into()),
        external
            .hosts
            .iter()
            .map(|(node, host)| format!("{node}={host}:{NODE_PORT}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut opts = up::options(ctx, timeout);
    opts.plan.services.clear();
    opts.cache_dir = None;
    opts.external = Some(external);
    up::run_daemon(opts)
}

/// The controller's options from its environment (`env` reads a variable).
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ExternalLab> {
    let hosts = env("PRODHOME_NODE_HOSTS")
        .ok_or_else(|| anyhow!("PRODHOME_NODE_HOSTS is not set: give each node's host as NODE=HOST,..."))?;
    let listen = env("PRODHOME_LISTEN").unwrap_or_else(|| "127.0.0.1:7800".into());
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("PRODHOME_LISTEN={listen:?}: expected ADDRESS:PORT, e.g. 0.0.0.0:7800"))?;
    let advertise = match env("PRODHOME_CONTROLLER_HOST") {
        Some(host) => host,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("PRODHOME_CONTROLLER_HOST is not set and the host name cannot be read")?
            .trim()
            .to_string(),
    };
    Ok(ExternalLab {
        hosts: parse_hosts(&hosts)?,
        node_port: NODE_PORT,
        secrets_dir: PathBuf::from(env("PRODHOME_SECRETS_DIR").unwrap_or_else(|| "/run/secrets".into())),
        listen,
        advertise,
        // `prodhome export k8s --cnpg`: CloudNativePG's Publication and
        // Subscription resources make them.
        replication_by_engine: env("PRODHOME_ENGINE").as_deref() == Some("k8s-cnpg"),
    })
}

/// `NODE=HOST,NODE=HOST`.
fn parse_hosts(text: &str) -> Result<BTreeMap<String, String>> {
    let mut hosts = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((node, host)) = pair.split_once('=') else {
            bail!("PRODHOME_NODE_HOSTS: `{pair}` is not NODE=HOST");
        };
        let (node, host) = (node.trim(), host.trim());
        if node.is_empty() || host.is_empty() {
            bail!("PRODHOME_NODE_HOSTS: `{pair}` is not NODE=HOST");
        }
        hosts.insert(node.to_string(), host.to_string());
    }
    if hosts.is_empty() {
        bail!("PRODHOME_NODE_HOSTS is empty: give each node's host as NODE=HOST,...");
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_environment_gives_hosts_listen_and_link_ports() {
        let e = env(&[
            ("PRODHOME_NODE_HOSTS", "ledger=ledger, mirror=mirror-rw"),
            ("PRODHOME_LISTEN", "0.0.0.0:7800"),
            ("PRODHOME_CONTROLLER_HOST", "controller"),
        ]);
        let lab = from_env(&e).expect("valid");
        assert_eq!(lab.hosts["mirror"], "mirror-rw");
        assert_eq!(lab.listen.port(), 7800);
        assert_eq!(lab.link_port(0), 7801);
        assert_eq!(lab.advertise, "controller");
        assert_eq!(lab.secrets_dir, PathBuf::from("/run/secrets"));
        assert!(!lab.replication_by_engine);
        let cnpg = from_env(&env(&[
            ("PRODHOME_NODE_HOSTS", "ledger=ledger-rw"),
            ("PRODHOME_ENGINE", "k8s-cnpg"),
            ("PRODHOME_CONTROLLER_HOST", "c"),
        ]))
        .expect("valid");
        assert!(cnpg.replication_by_engine);
    }

    #[test]
    fn a_bad_environment_says_which_variable() {
        let missing = from_env(&env(&[])).unwrap_err().to_string();
        assert!(missing.contains("PRODHOME_NODE_HOSTS is not set"), "{missing}");
        let bad = from_env(&env(&[("PRODHOME_NODE_HOSTS", "ledger")]))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("`ledger` is not NODE=HOST"), "{bad}");
        let listen = from_env(&env(&[
            ("PRODHOME_NODE_HOSTS", "a=b"),
            ("PRODHOME_LISTEN", "7800"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(listen.contains("PRODHOME_LISTEN"), "{listen}");
    }
}
