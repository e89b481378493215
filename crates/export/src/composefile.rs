//! The Compose file format as typed structures, shared by the compose and
//! the stack generators (the same format: `docker stack deploy` reads the
//! `deploy` keys compose ignores, and ignores what Swarm cannot do).

use std::collections::BTreeMap;

use serde::Serialize;

/// A whole compose or stack file.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ComposeFile {
    /// Only the stack file has one: `docker stack deploy` wants it, and
    /// the Compose Specification (docker-compose 1.27+) needs none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    pub(crate) services: BTreeMap<String, ComposeService>,
    pub(crate) networks: BTreeMap<String, Network>,
    pub(crate) volumes: BTreeMap<String, Volume>,
    pub(crate) secrets: BTreeMap<String, FileObject>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) configs: BTreeMap<String, FileObject>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct ComposeService {
    pub(crate) image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) command: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) env_file: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) depends_on: Option<DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restart: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) ports: Vec<Port>,
    pub(crate) networks: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) volumes: Vec<Mount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) secrets: Vec<ObjectRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) configs: Vec<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) shm_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deploy: Option<Deploy>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Healthcheck {
    pub(crate) test: Vec<String>,
    pub(crate) interval: String,
    pub(crate) timeout: String,
    pub(crate) retries: u32,
    pub(crate) start_period: String,
}

/// `depends_on` in its long form, with a condition per dependency (the
/// stack file has none: Swarm starts every service at once and ignores
/// it; the controller retries until each node answers).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(crate) struct DependsOn(pub(crate) BTreeMap<String, Condition>);

#[derive(Debug, Serialize)]
pub(crate) struct Condition {
    pub(crate) condition: String,
}

/// A published port: compose's short form (`127.0.0.1:15432:5432`), or
/// the long form Swarm needs for `mode: host`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Port {
    Short(String),
    Long {
        target: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        published: Option<u16>,
        protocol: String,
        mode: String,
    },
}

/// A named volume mounted into a service (`NAME:/path`).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(crate) struct Mount(pub(crate) String);

/// A secret or config a service mounts, with where and as whom.
#[derive(Debug, Serialize)]
pub(crate) struct ObjectRef {
    pub(crate) source: String,
    pub(crate) target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<u32>,
}

/// A top-level secret or config read from a file of the export.
#[derive(Debug, Serialize)]
pub(crate) struct FileObject {
    pub(crate) file: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Network {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attachable: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Volume {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) labels: BTreeMap<String, String>,
}

/// Swarm's `deploy` section.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Deploy {
    pub(crate) replicas: u32,
    pub(crate) endpoint_mode: String,
    pub(crate) restart_policy: RestartPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) placement: Option<Placement>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct RestartPolicy {
    pub(crate) condition: String,
    pub(crate) delay: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_attempts: Option<u32>,
    pub(crate) window: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Placement {
    pub(crate) constraints: Vec<String>,
}

/// Serialises `file` with `header` (comment lines) above it.
pub(crate) fn to_yaml(header: &str, file: &ComposeFile) -> Result<String, crate::ExportError> {
    let body = serde_yaml::to_string(file).map_err(|source| crate::ExportError::Yaml {
        what: "the compose file".into(),
        source,
    })?;
    Ok(format!("{header}{body}"))
}
