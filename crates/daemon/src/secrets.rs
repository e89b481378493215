//! Generated passwords, one pair per node, kept in `secrets.json` (0600).
//! Generated on the first `up` and never changed after, so a restarted lab
//! keeps working with the same credentials.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use model::Secret;
use pg::Credentials;
use serde::{Deserialize, Serialize};

use crate::layout::{StateDir, write_atomic};

#[derive(Default, Serialize, Deserialize)]
struct File {
    nodes: BTreeMap<String, Pair>,
    /// The lab's `[secret.NAME]`s.
    #[serde(default)]
    named: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct Pair {
    superuser: String,
    replication: String,
}

/// Reads the secrets, generating (and saving) any a node lacks.
pub(crate) fn load_or_generate(state: &StateDir, nodes: &[&str]) -> Result<BTreeMap<String, Credentials>> {
    let path = state.secrets();
    let mut file = read_or_default(state)?;
    let mut changed = false;
    for node in nodes {
        if !file.nodes.contains_key(*node) {
            let pair = Pair {
                superuser: Secret::generate(32)?.expose().to_string(),
                replication: Secret::generate(32)?.expose().to_string(),
            };
            file.nodes.insert(node.to_string(), pair);
            changed = true;
        }
    }
    if changed {
        write_atomic(&path, serde_json::to_string_pretty(&file)?.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(to_credentials(file))
}

/// Reads the secrets without creating any (for commands other than `up`).
pub(crate) fn load(state: &StateDir) -> Result<BTreeMap<String, Credentials>> {
    Ok(to_credentials(read_existing(state)?))
}

/// The secrets file, or an empty one before the lab's first `up`.
fn read_or_default(state: &StateDir) -> Result<File> {
    let path = state.secrets();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; restore it or rebuild the lab with `prodhome down --purge`",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The secrets file of a lab that has been up at least once.
fn read_existing(state: &StateDir) -> Result<File> {
    let path = state.secrets();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no secrets at {}: this lab has not been brought up yet (run `prodhome up`)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
}

fn to_credentials(file: File) -> BTreeMap<String, Credentials> {
    file.nodes
        .into_iter()
        .map(|(name, p)| {
            let creds = Credentials {
                superuser: Secret::new(p.superuser),
                replication: Secret::new(p.replication),
            };
            (name, creds)
        })
        .collect()
}

/// The lab's `[secret.NAME]`s, generating (and saving) any that are missing.
/// A secret keeps its value across runs.
pub(crate) fn named_or_generate(
    state: &StateDir,
    wanted: &[lab::SecretPlan],
) -> Result<BTreeMap<String, Secret>> {
    let path = state.secrets();
    let mut file = read_or_default(state)?;
    let mut changed = false;
    for secret in wanted {
        if !file.named.contains_key(&secret.name) {
            file.named.insert(
                secret.name.clone(),
                Secret::generate_from(secret.length, &secret.alphabet)?
                    .expose()
                    .to_string(),
            );
            changed = true;
        }
    }
    if changed {
        write_atomic(&path, serde_json::to_string_pretty(&file)?.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(file.named.into_iter().map(|(k, v)| (k, Secret::new(v))).collect())
}

/// One `[secret.NAME]`, for `prodhome secret NAME`.
pub(crate) fn named(state: &StateDir, name: &str) -> Result<Option<Secret>> {
    Ok(read_existing(state)?
        .named
        .get(name)
        .map(|v| Secret::new(v.clone())))
}
