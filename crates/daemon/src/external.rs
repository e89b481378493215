//! A lab whose nodes an engine runs (`prodhome controller`): where each
//! node answers, where its passwords are mounted, where the controller
//! listens. The controller keeps it in the state directory
//! (`external.json`), so that the CLI in its container (`verify`, `soak`,
//! `psql`) reaches the same servers ([`crate::offline`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use lab::Plan;
use model::Secret;
use pg::{Credentials, NodeSpec};
use serde::{Deserialize, Serialize};

use crate::layout::{StateDir, write_atomic};

/// The controller's nodes and where it serves (see the export crate's
/// contract with the controller).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The engine makes the publications and subscriptions (CloudNativePG,
    /// from its resources): this process applies the schema, grants the
    /// replication role and waits for the sync, and runs no replication
    /// links (the subscriptions connect to the publisher directly, so those
    /// paths cannot be faulted).
    pub replication_by_engine: bool,
}

impl ExternalLab {
    /// The port replication link `index` listens on.
    pub fn link_port(&self, index: usize) -> u16 {
        Plan::controller_link_port(self.listen.port(), index)
    }

    /// Keeps it in the state directory, for the CLI in the controller's
    /// container (`verify`, `soak`, `psql`).
    pub(crate) fn save(&self, state: &StateDir) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_atomic(&state.external(), text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", state.external().display()))
    }

    /// What [`ExternalLab::save`] kept; `None` for a lab this machine runs.
    pub(crate) fn load(state: &StateDir) -> Option<ExternalLab> {
        let text = std::fs::read_to_string(state.external()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every node as a remote server at its host, with the passwords the
    /// engine mounts.
    pub(crate) fn node_specs(&self, plan: &Plan, state: &StateDir) -> Result<Vec<NodeSpec>> {
        plan.nodes
            .iter()
            .map(|node| {
                let host = self.hosts.get(&node.name).ok_or_else(|| {
                    anyhow!(
                        "PRODHOME_NODE_HOSTS names no host for node {}; give every node as NODE=HOST (it has {})",
                        node.name,
                        self.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?;
                Ok(NodeSpec {
                    name: node.name.clone(),
                    data_dir: state.data_dir(&node.name),
                    socket_dir: state.socket_dir(&node.name),
                    port: self.node_port,
                    settings: node.settings.clone(),
                    credentials: self.credentials(&node.name)?,
                    remote: Some(host.clone()),
                })
            })
            .collect()
    }

    /// `node`'s passwords, from the files the engine mounts.
    pub(crate) fn credentials(&self, node: &str) -> Result<Credentials> {
        Ok(Credentials {
            superuser: read_secret(&self.secrets_dir, &format!("{node}-superuser"))?,
            replication: read_secret(&self.secrets_dir, &format!("{node}-replication"))?,
        })
    }

    /// The lab's `[secret.NAME]`s, from the files the engine mounts.
    pub(crate) fn named_secrets(&self, plan: &Plan) -> Result<BTreeMap<String, Secret>> {
        plan.secrets
            .iter()
            .map(|s| {
                let file = format!("secret-{}", s.name.replace('_', "-"));
                Ok((s.name.clone(), read_secret(&self.secrets_dir, &file)?))
            })
            .collect()
    }
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
