//! `prodhome export compose`: one compose file that `docker compose up`
//! and Debian's docker-compose 1.29 both run as the lab. Every node waits
//! for nothing and is healthy when a real query answers; the controller
//! and services start once what they depend on is healthy
//! (`condition: service_healthy`). Passwords are files under `secrets/`
//! (0600, mounted as secrets), never values in the YAML; configuration
//! files are bind-mounted read-only from `config/`; host-side ports are
//! published on 127.0.0.1 only; everything is on one network.

use std::collections::BTreeMap;

use crate::composefile::{
    ComposeFile, ComposeService, Condition, DependsOn, FileObject, Healthcheck, Mount, Network, ObjectRef,
    Port, Volume, to_yaml,
};
use crate::files::{Bundle, File};
use crate::model::{self, CONTROLLER_PORT, Deployable, NODE_CONF_DIR, PG_PORT, STATE_DIR, Wait};
use crate::{ExportError, compose_bundle};

/// The compose file's name in the output directory.
pub const FILE: &str = "compose.yaml";
/// The one network every container is on.
pub(crate) const NETWORK: &str = "lab";
/// The controller's service name, which is its host name on the network.
pub(crate) const CONTROLLER: &str = "controller";

const HEADER: &str = "# Written by `prodhome export compose`: the lab for `docker compose up -d`\n\
# (or Debian's docker-compose 1.29). Change the lab file and export again.\n\
# Passwords are the files in secrets/ (0600), never values here.\n";

/// The compose export of `lab`.
pub fn generate(lab: &Deployable) -> Result<Bundle, ExportError> {
    let mut file = ComposeFile::default();
    file.networks.insert(NETWORK.into(), Network::default());
    let labels = BTreeMap::from([("prodhome.lab".to_string(), lab.lab.clone())]);
    for node in &lab.nodes {
        file.volumes.insert(
            format!("{}-data", node.name),
            Volume {
                labels: labels.clone(),
            },
        );
        file.services.insert(node.name.clone(), node_service(lab, node));
    }
    file.volumes.insert(
        "controller-state".into(),
        Volume {
            labels: labels.clone(),
        },
    );
    for secret in &lab.secrets {
        file.secrets.insert(
            secret.name.clone(),
            FileObject {
                file: format!("./secrets/{}", secret.name),
            },
        );
    }
    file.services.insert(CONTROLLER.into(), controller(lab));
    for service in &lab.services {
        file.services.insert(service.name.clone(), app_service(service));
    }
    let main = File::public(FILE, to_yaml(HEADER, &file)?);
    Ok(compose_bundle("compose", main, lab))
}

fn node_service(lab: &Deployable, node: &model::Node) -> ComposeService {
    let published = node.published.map(|p| p.to_string()).unwrap_or_default();
    let mut volumes = vec![Mount(format!("{}-data:{}", node.name, DATA_MOUNT))];
    for name in ["postgresql.conf", "pg_hba.conf"] {
        volumes.push(Mount(format!(
            "./config/{}/{name}:{NODE_CONF_DIR}/{name}:ro",
            node.name
        )));
    }
    ComposeService {
        image: lab.postgres_image.clone(),
        hostname: Some(node.name.clone()),
        command: model::node_command(node, "$$"),
        healthcheck: Some(node_healthcheck()),
        restart: Some("unless-stopped".into()),
        // 127.0.0.1 only: the lab is this machine's, not its network's.
        ports: vec![Port::Short(format!("127.0.0.1:{published}:{PG_PORT}"))],
        networks: vec![NETWORK.into()],
        volumes,
        secrets: vec![secret_ref(&node.superuser_secret)],
        // Docker's 64 MB /dev/shm is too small for parallel queries.
        shm_size: Some("256m".into()),
        ..ComposeService::default()
    }
}

/// Where a node's volume is mounted (its data directory is inside).
pub(crate) const DATA_MOUNT: &str = "/var/lib/postgresql/data";

pub(crate) fn node_healthcheck() -> Healthcheck {
    let mut test = vec!["CMD".to_string()];
    test.extend(model::node_healthcheck());
    Healthcheck {
        test,
        interval: "2s".into(),
        timeout: "5s".into(),
        retries: 30,
        start_period: "30s".into(),
    }
}

fn secret_ref(name: &str) -> ObjectRef {
    ObjectRef {
        source: name.into(),
        target: name.into(),
        uid: None,
        gid: None,
        mode: None,
    }
}

fn controller(lab: &Deployable) -> ComposeService {
    let published = lab
        .controller
        .published
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut volumes = vec![Mount(format!("controller-state:{STATE_DIR}"))];
    for config in &lab.configs {
        volumes.push(Mount(format!(
            "./config/files/{}:{}:ro",
            config.key, config.target
        )));
    }
    let depends = lab
        .nodes
        .iter()
        .map(|n| (n.name.clone(), condition(Wait::Healthy)))
        .collect();
    let (uid, gid) = lab.postgres_ids;
    ComposeService {
        image: lab.controller.image.clone(),
        // The account the secret files belong to.
        user: Some(format!("{uid}:{gid}")),
        entrypoint: lab.controller.argv.clone(),
        environment: controller_env(lab, "compose", CONTROLLER),
        depends_on: Some(DependsOn(depends)),
        restart: Some("unless-stopped".into()),
        ports: vec![Port::Short(format!("127.0.0.1:{published}:{CONTROLLER_PORT}"))],
        networks: vec![NETWORK.into()],
        volumes,
        secrets: lab.controller.secrets.iter().map(|s| secret_ref(s)).collect(),
        ..ComposeService::default()
    }
}

/// The controller's environment: the engine, where the nodes answer, its
/// own listening port and its host name on the engine's network (`host`,
/// where subscriptions reach its replication links; see [`crate::model`]
/// for the contract).
pub(crate) fn controller_env(lab: &Deployable, engine: &str, host: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PRODHOME_ENGINE".to_string(), engine.to_string()),
        ("PRODHOME_CONTROLLER_HOST".to_string(), host.to_string()),
        (
            "PRODHOME_NODE_HOSTS".to_string(),
            lab.node_hosts(|n| n.to_string()),
        ),
        ("PRODHOME_SECRETS_DIR".to_string(), model::SECRETS_DIR.to_string()),
        (
            "PRODHOME_LISTEN".to_string(),
            format!("0.0.0.0:{CONTROLLER_PORT}"),
        ),
    ])
}

fn condition(wait: Wait) -> Condition {
    Condition {
        condition: match wait {
            Wait::Healthy => "service_healthy",
            Wait::Started => "service_started",
        }
        .into(),
    }
}

fn app_service(service: &model::Service) -> ComposeService {
    let depends: BTreeMap<String, Condition> = service
        .depends_on
        .iter()
        .map(|(name, wait)| (name.clone(), condition(*wait)))
        .collect();
    ComposeService {
        image: service.image.clone(),
        command: service.args.clone(),
        env_file: vec![format!("./secrets/{}-env", service.name)],
        healthcheck: service.health.as_ref().map(|argv| service_healthcheck(argv)),
        depends_on: (!depends.is_empty()).then_some(DependsOn(depends)),
        // compose's default is no restart; a bare `no` would read as false.
        restart: (service.restart != lab::RestartPlan::No)
            .then(|| model::restart_name(service.restart).into()),
        networks: vec![NETWORK.into()],
        ..ComposeService::default()
    }
}

/// A service's exec readiness probe as a healthcheck.
pub(crate) fn service_healthcheck(argv: &[String]) -> Healthcheck {
    Healthcheck {
        test: std::iter::once("CMD".to_string())
            .chain(argv.iter().cloned())
            .collect(),
        interval: "2s".into(),
        timeout: "5s".into(),
        retries: 30,
        start_period: "10s".into(),
    }
}
