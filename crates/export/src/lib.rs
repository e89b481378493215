//! `prodhome export compose|stack|k8s`: the lab for an engine that spans
//! machines. prodhome does not orchestrate past one machine; it writes the
//! files that docker compose, Docker Swarm and Kubernetes run, with the
//! controller (prodhome in a container) beside the Postgres nodes.
//!
//! Data flows one way: the CLI gathers [`Inputs`] (the checked
//! [`lab::Plan`], the lab's secrets from its store, the pinned image tags)
//! → [`model::Deployable`], the engine-neutral parts and the contract with
//! the controller → one generator per engine ([`compose`], [`stack`],
//! [`k8s`], with [`k8s::cnpg`] for CloudNativePG) → a [`Bundle`] of files,
//! written atomically by [`Bundle::write`]. Generators are pure: no I/O,
//! no engine; the YAML comes from typed structures (k8s-openapi's for
//! Kubernetes, this crate's own for compose and the CNPG resources).

pub mod compose;
mod composefile;
mod error;
pub mod files;
pub mod k8s;
pub mod model;
pub mod stack;

pub use error::ExportError;
pub use files::{Bundle, File, MARKER};
pub use model::{Deployable, Images, Inputs};

/// The engines a lab can be exported for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Compose,
    Stack,
    /// Kubernetes; `cnpg` writes the nodes as CloudNativePG clusters.
    K8s {
        cnpg: bool,
    },
}

/// The files of `inputs` exported for `target`.
pub fn export(target: Target, inputs: &Inputs<'_>) -> Result<Bundle, ExportError> {
    let lab = Deployable::new(inputs)?;
    match target {
        Target::Compose => compose::generate(&lab),
        Target::Stack => stack::generate(&lab),
        Target::K8s { cnpg } => k8s::generate(&lab, cnpg),
    }
}

/// A compose-format export (`compose`, `stack`): its YAML `main` beside
/// the secret files, each node's configuration and the lab's files.
fn compose_bundle(kind: &str, main: File, lab: &Deployable) -> Bundle {
    let mut files = vec![main];
    files.extend(secret_files(lab));
    files.extend(node_files(lab));
    files.extend(configs_files(lab));
    Bundle {
        kind: kind.into(),
        files,
    }
}

/// `secrets/NAME` for every secret, 0600, owned by the containers'
/// account (compose mounts the files as they are; the others read them at
/// deploy).
fn secret_files(lab: &Deployable) -> Vec<File> {
    lab.secrets
        .iter()
        .chain(&lab.env_files)
        .map(|s| {
            File::secret(format!("secrets/{}", s.name), s.value.expose().to_string())
                .owned_by(lab.postgres_ids)
        })
        .collect()
}

/// `config/NODE/postgresql.conf` and `pg_hba.conf` for every node.
fn node_files(lab: &Deployable) -> Vec<File> {
    let mut out = Vec::new();
    for node in &lab.nodes {
        out.push(File::public(
            format!("config/{}/postgresql.conf", node.name),
            node.conf.clone(),
        ));
        out.push(File::public(
            format!("config/{}/pg_hba.conf", node.name),
            model::PG_HBA.into(),
        ));
    }
    out
}

/// `config/files/KEY`: the lab file and the files it names.
fn configs_files(lab: &Deployable) -> Vec<File> {
    lab.configs
        .iter()
        .map(|c| File::public(format!("config/files/{}", c.key), c.text.clone()))
        .collect()
}
