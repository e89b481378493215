//! The lab's deployable parts, engine-neutral: what every generator
//! (compose, stack, k8s, cnpg) turns into its own format. Built once from
//! the [`Inputs`] (the lab's [`lab::Plan`], its secrets and image tags), so
//! that the three engines agree on names, files, ports and the contract
//! with the controller.
//!
//! The contract with `prodhome controller` (the container that sets up
//! replication, runs hum and the sampler and serves the dashboard), the
//! same under every engine:
//! - the lab file at [`LAB_FILE`], its schema and hum script files at the
//!   same paths relative to it ([`CONFIG_DIR`]);
//! - each secret a file `/run/secrets/NAME` ([`SECRETS_DIR`]): `NODE-superuser`,
//!   `NODE-replication` and `secret-NAME` (see [`SecretFile`]);
//! - `PRODHOME_NODE_HOSTS=node=host,...`: where each node answers on port
//!   [`PG_PORT`] (the node's service name; CNPG's `NODE-rw` service);
//! - `PRODHOME_CONTROLLER_HOST`: its own host name there, where each
//!   subscription reaches its replication link (the controller proxies
//!   every replication path, so that a fault can cut or slow it), at
//!   [`Controller::link_ports`];
//! - its state (metrics, events, ledger) in a volume at [`STATE_DIR`].

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use lab::{Plan, RestartPlan};
use model::Secret;

use crate::ExportError;

mod postgres;
mod service;

pub use postgres::{PG_HBA, node_command, node_healthcheck};

/// Where the lab file is mounted in the controller's container.
pub const LAB_FILE: &str = "/etc/prodhome/lab.toml";
/// The directory the lab file's relative paths are resolved against.
pub const CONFIG_DIR: &str = "/etc/prodhome";
/// Where each secret is a file, as Docker and Kubernetes both mount them.
pub const SECRETS_DIR: &str = "/run/secrets";
/// The controller's state directory (a volume).
pub const STATE_DIR: &str = "/var/lib/prodhome";
/// Every node's port inside its container (the host side is the lab's).
pub const PG_PORT: u16 = 5432;
/// The controller's dashboard and control API inside its container.
pub const CONTROLLER_PORT: u16 = 7800;
/// Where a node's postgresql.conf and pg_hba.conf are mounted.
pub const NODE_CONF_DIR: &str = "/etc/prodhome/postgres";

/// What the generators are given: the lab and what the CLI read for it.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    /// The lab file's text as written (the seed lab's when it has none).
    pub lab_toml: String,
    pub images: Images,
    /// Every node's generated passwords, by node name.
    pub credentials: BTreeMap<String, (Secret, Secret)>,
    /// The lab's `[secret.NAME]`s, by name.
    pub named_secrets: BTreeMap<String, Secret>,
    /// Host-side ports kept for nodes without a fixed one (`ports.json`).
    pub kept_ports: BTreeMap<String, u16>,
    /// The uid and gid the Postgres image runs as (for Kubernetes'
    /// `fsGroup`, so a fresh volume is writable).
    pub postgres_ids: (u32, u32),
}

/// The pinned image references (content-hash tags, see the engine crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// The Postgres image every node runs.
    pub postgres: String,
    /// The image holding prodhome itself, for the controller.
    pub controller: String,
    /// Each service's image, by service name.
    pub services: BTreeMap<String, String>,
}

/// The lab as the generators see it.
#[derive(Debug, Clone)]
pub struct Deployable {
    pub lab: String,
    pub nodes: Vec<Node>,
    pub services: Vec<Service>,
    pub controller: Controller,
    /// Files mounted read-only into the controller: the lab file first.
    pub configs: Vec<ConfigFile>,
    pub secrets: Vec<SecretFile>,
    /// Each service's environment as an env file (`SERVICE-env`): it may
    /// hold passwords, so it is a secret file too, read at deploy.
    pub env_files: Vec<SecretFile>,
    pub postgres_image: String,
    pub postgres_ids: (u32, u32),
    pub postgres_version: u32,
    pub replications: Vec<lab::ReplicationPlan>,
}

/// One Postgres node.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The machine it is pinned to, when the lab names one.
    pub host: Option<String>,
    /// The host-side port, when the lab fixes one or kept one.
    pub published: Option<u16>,
    /// postgresql.conf for the container.
    pub conf: String,
    /// The lab's own settings, rendered for postgresql.conf.
    pub settings: Vec<(String, String)>,
    /// The secret holding the superuser's password (initdb's `--pwfile`).
    pub superuser_secret: String,
}

/// One `[service.NAME]`, run from its own image.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub image: String,
    /// argv after the program (the image's entrypoint is the program).
    pub args: Vec<String>,
    /// Its environment, references resolved for the engine's network; it
    /// may hold passwords, so it is written only as a secret env file.
    pub env: Vec<(String, String)>,
    pub depends_on: Vec<(String, Wait)>,
    /// An exec readiness probe, the one kind the image can run itself.
    pub health: Option<Vec<String>>,
    pub restart: RestartPlan,
    /// Failed restarts before Swarm gives up (`max_attempts`).
    pub max_restarts: u32,
}

/// What a dependent waits for before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Started,
    Healthy,
}

/// The controller: prodhome in a container, beside the nodes.
#[derive(Debug, Clone)]
pub struct Controller {
    pub image: String,
    pub argv: Vec<String>,
    /// The host-side port of its dashboard and API.
    pub published: Option<u16>,
    /// Every secret the lab has: it sets roles and passwords up.
    pub secrets: Vec<String>,
    /// Where its replication links listen, one per replication path in
    /// the lab's order (`lab::Plan::replication_paths`): the port after
    /// [`CONTROLLER_PORT`], and on.
    pub link_ports: Vec<u16>,
}

/// A file the controller reads: the lab file and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// A name Docker and Kubernetes accept (`lab-toml`, `schema-sql`).
    pub key: String,
    /// Where it is mounted (absolute).
    pub target: String,
    pub text: String,
}

/// A secret, one value per file.
#[derive(Debug, Clone)]
pub struct SecretFile {
    /// `NODE-superuser`, `NODE-replication`, `secret-NAME` (`_` as `-`),
    /// or `SERVICE-env` for an env file.
    pub name: String,
    pub value: Secret,
}

impl Deployable {
    /// The lab's deployable parts, or what is missing to build them.
    pub fn new(inputs: &Inputs<'_>) -> Result<Deployable, ExportError> {
        let plan = inputs.plan;
        let secrets = secrets(inputs)?;
        let nodes = plan
            .nodes
            .iter()
            .map(|n| Node {
                name: n.name.clone(),
                host: n.host.clone(),
                published: n.port.or_else(|| inputs.kept_ports.get(&n.name).copied()),
                conf: postgres::node_conf(&n.settings),
                settings: n.settings.clone(),
                superuser_secret: format!("{}-superuser", n.name),
            })
            .collect();
        let mut services = Vec::new();
        let mut env_files = Vec::new();
        for s in &plan.services {
            let service = service::service(inputs, s)?;
            env_files.push(SecretFile {
                name: format!("{}-env", s.name),
                value: Secret::new(service::env_file(&service.env)),
            });
            services.push(service);
        }
        let controller = Controller {
            image: inputs.images.controller.clone(),
            argv: ["prodhome", "-f", LAB_FILE, "--state-dir", STATE_DIR, "controller"]
                .map(String::from)
                .to_vec(),
            published: plan.api_port,
            secrets: secrets.iter().map(|s| s.name.clone()).collect(),
            link_ports: (0..plan.replication_paths().len())
                .map(|i| Plan::controller_link_port(CONTROLLER_PORT, i))
                .collect(),
        };
        Ok(Deployable {
            lab: plan.name.clone(),
            nodes,
            services,
            controller,
            configs: configs(inputs)?,
            secrets,
            env_files,
            postgres_image: inputs.images.postgres.clone(),
            postgres_ids: inputs.postgres_ids,
            postgres_version: plan.postgres_version,
            replications: plan.replications.clone(),
        })
    }

    /// `PRODHOME_NODE_HOSTS` for the controller, given each node's host.
    pub fn node_hosts(&self, host: impl Fn(&str) -> String) -> String {
        let pairs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.name, host(&n.name)))
            .collect();
        pairs.join(",")
    }
}

/// The node's and named secrets, from the lab's store.
fn secrets(inputs: &Inputs<'_>) -> Result<Vec<SecretFile>, ExportError> {
    let mut out = Vec::new();
    for node in &inputs.plan.nodes {
        let (superuser, replication) = inputs
            .credentials
            .get(&node.name)
            .ok_or_else(|| ExportError::MissingSecret(format!("{}'s passwords", node.name)))?;
        out.push(SecretFile {
            name: format!("{}-superuser", node.name),
            value: superuser.clone(),
        });
        out.push(SecretFile {
            name: format!("{}-replication", node.name),
            value: replication.clone(),
        });
    }
    for secret in &inputs.plan.secrets {
        let value = inputs
            .named_secrets
            .get(&secret.name)
            .ok_or_else(|| ExportError::MissingSecret(format!("secret.{}", secret.name)))?;
        out.push(SecretFile {
            name: format!("secret-{}", secret.name.replace('_', "-")),
            value: value.clone(),
        });
    }
    Ok(out)
}

/// The lab file, then every file it names (schemas, hum's script), each
/// mounted where the lab file's relative path finds it.
fn configs(inputs: &Inputs<'_>) -> Result<Vec<ConfigFile>, ExportError> {
    let plan = inputs.plan;
    let mut out = vec![ConfigFile {
        key: "lab-toml".into(),
        target: LAB_FILE.into(),
        text: inputs.lab_toml.clone(),
    }];
    let mut files: Vec<(&Path, &str)> = Vec::new();
    for r in &plan.replications {
        if let Some(schema) = &r.schema {
            files.push((&schema.path, &schema.sql));
        }
    }
    if let Some(lab::HumPlan {
        workload: lab::HumWorkload::Script { path, text },
        ..
    }) = &plan.hum
    {
        files.push((path, text));
    }
    for (path, text) in files {
        let target = target_of(&plan.dir, path);
        if out.iter().any(|c| c.target == target) {
            continue;
        }
        let key = config_key(&target, out.len());
        out.push(ConfigFile {
            key,
            target,
            text: text.to_string(),
        });
    }
    Ok(out)
}

/// Where `path` (relative to the lab's directory when it is inside it) sits
/// under [`CONFIG_DIR`]; a file outside keeps its absolute path.
fn target_of(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).ok();
    let rel_ok = rel.is_some_and(|r| r.components().all(|c| matches!(c, Component::Normal(_))));
    match rel {
        Some(rel) if rel_ok => PathBuf::from(CONFIG_DIR).join(rel).display().to_string(),
        _ => path.display().to_string(),
    }
}

/// A config's name: its file name in letters, digits and `-` (what
/// ConfigMap keys and Swarm config names both accept), made unique.
fn config_key(target: &str, index: usize) -> String {
    let name = Path::new(target)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("f{index}-{}", clean.trim_matches('-'))
}

/// A restart policy's name in compose's and Swarm's words.
pub fn restart_name(restart: RestartPlan) -> &'static str {
    match restart {
        RestartPlan::No => "no",
        RestartPlan::OnFailure => "on-failure",
        RestartPlan::Always => "always",
    }
}
