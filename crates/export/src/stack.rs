//! `prodhome export stack`: the lab for `docker stack deploy` on a Swarm
//! of any size. Passwords and configuration are Swarm objects (secrets and
//! configs created from the export's files at deploy), a node the lab pins
//! to a host gets a placement constraint, every service has a restart
//! policy, and everything is on one overlay network.
//!
//! No virtual IPs and no routing mesh: both need IPVS in the kernel, which
//! some machines lack (then a VIP or a mesh port accepts connections and
//! never answers). Every service is `endpoint_mode: dnsrr` and publishes
//! its port in `mode: host`; the file's header says so too.

use std::collections::BTreeMap;

use crate::compose::{
    CONTROLLER, DATA_MOUNT, NETWORK, controller_env, node_healthcheck, service_healthcheck,
};
use crate::composefile::{
    ComposeFile, ComposeService, Deploy, FileObject, Mount, Network, ObjectRef, Placement, Port,
    RestartPolicy, Volume, to_yaml,
};
use crate::files::{Bundle, File};
use crate::model::{self, CONTROLLER_PORT, Deployable, NODE_CONF_DIR, PG_PORT, STATE_DIR};
use crate::{ExportError, compose_bundle};

/// The stack file's name in the output directory.
pub const FILE: &str = "stack.yaml";

const HEADER: &str = "# Written by `prodhome export stack`: the lab for\n\
#   docker stack deploy --resolve-image never -c stack.yaml LAB\n\
# Change the lab file and export again.\n\
#\n\
# endpoint_mode: dnsrr and ports in mode: host, on purpose: Swarm's virtual\n\
# IPs and its routing mesh need IPVS in the kernel, and on a kernel without\n\
# it (seen on machines here) a VIP or a mesh port accepts connections that\n\
# never answer. With dnsrr a service's name resolves to its task's own\n\
# address, and a host-mode port is published on the machine the task runs\n\
# on. Swarm cannot bind a published port to one address: it is open on\n\
# every interface of that machine, so firewall it or leave it unpublished.\n\
#\n\
# Secrets and configs become Swarm objects at deploy, from the files in\n\
# secrets/ (0600) and config/; no password is a value here. A node's volume\n\
# lives on the machine its task runs on: give each node a `host` in the lab\n\
# file so it always comes back to its data.\n";

/// The stack export of `lab`.
pub fn generate(lab: &Deployable) -> Result<Bundle, ExportError> {
    let labels = BTreeMap::from([("prodhome.lab".to_string(), lab.lab.clone())]);
    let mut file = ComposeFile {
        version: Some("3.8".into()),
        ..ComposeFile::default()
    };
    file.networks.insert(
        NETWORK.into(),
        Network {
            driver: Some("overlay".into()),
            attachable: Some(true),
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
    for node in &lab.nodes {
        for name in ["postgresql.conf", "pg_hba.conf"] {
            file.configs.insert(
                node_config_name(&node.name, name),
                FileObject {
                    file: format!("./config/{}/{name}", node.name),
                },
            );
        }
        file.volumes.insert(
            format!("{}-data", node.name),
            Volume {
                labels: labels.clone(),
            },
        );
        file.services.insert(node.name.clone(), node_service(lab, node));
    }
    for config in &lab.configs {
        file.configs.insert(
            config.key.clone(),
            FileObject {
                file: format!("./config/files/{}", config.key),
            },
        );
    }
    file.volumes.insert("controller-state".into(), Volume { labels });
    file.services.insert(CONTROLLER.into(), controller(lab));
    for service in &lab.services {
        file.services.insert(service.name.clone(), app_service(service));
    }
    let main = File::public(FILE, to_yaml(HEADER, &file)?);
    Ok(compose_bundle("stack", main, lab))
}

fn node_config_name(node: &str, file: &str) -> String {
    format!("{node}-{}", file.replace('.', "-"))
}

/// A secret or config mounted read-only for the containers' account.
fn owned_ref(lab: &Deployable, source: &str, target: &str, mode: u32) -> ObjectRef {
    let (uid, gid) = lab.postgres_ids;
    ObjectRef {
        source: source.into(),
        target: target.into(),
        uid: Some(uid.to_string()),
        gid: Some(gid.to_string()),
        mode: Some(mode),
    }
}

fn deploy(restart: &str, max_attempts: Option<u32>, host: Option<&str>) -> Deploy {
    Deploy {
        replicas: 1,
        endpoint_mode: "dnsrr".into(),
        restart_policy: RestartPolicy {
            condition: restart.into(),
            delay: "2s".into(),
            max_attempts,
            window: "30s".into(),
        },
        placement: host.map(|h| Placement {
            constraints: vec![format!("node.hostname == {h}")],
        }),
        labels: BTreeMap::new(),
    }
}

fn host_port(target: u16, published: Option<u16>) -> Port {
    Port::Long {
        target,
        published,
        protocol: "tcp".into(),
        mode: "host".into(),
    }
}

fn node_service(lab: &Deployable, node: &model::Node) -> ComposeService {
    let configs = ["postgresql.conf", "pg_hba.conf"]
        .iter()
        .map(|name| {
            owned_ref(
                lab,
                &node_config_name(&node.name, name),
                &format!("{NODE_CONF_DIR}/{name}"),
                0o444,
            )
        })
        .collect();
    ComposeService {
        image: lab.postgres_image.clone(),
        hostname: Some(node.name.clone()),
        command: model::node_command(node, "$$"),
        healthcheck: Some(node_healthcheck()),
        ports: vec![host_port(PG_PORT, node.published)],
        networks: vec![NETWORK.into()],
        volumes: vec![Mount(format!("{}-data:{DATA_MOUNT}", node.name))],
        secrets: vec![owned_ref(
            lab,
            &node.superuser_secret,
            &node.superuser_secret,
            0o400,
        )],
        configs,
        deploy: Some(deploy("any", None, node.host.as_deref())),
        ..ComposeService::default()
    }
}

fn controller(lab: &Deployable) -> ComposeService {
    let (uid, gid) = lab.postgres_ids;
    ComposeService {
        image: lab.controller.image.clone(),
        user: Some(format!("{uid}:{gid}")),
        entrypoint: lab.controller.argv.clone(),
        environment: controller_env(lab, "stack", CONTROLLER),
        ports: vec![host_port(CONTROLLER_PORT, lab.controller.published)],
        networks: vec![NETWORK.into()],
        volumes: vec![Mount(format!("controller-state:{STATE_DIR}"))],
        secrets: lab
            .controller
            .secrets
            .iter()
            .map(|s| owned_ref(lab, s, s, 0o400))
            .collect(),
        configs: lab
            .configs
            .iter()
            .map(|c| owned_ref(lab, &c.key, &c.target, 0o444))
            .collect(),
        deploy: Some(deploy("any", None, None)),
        ..ComposeService::default()
    }
}

fn app_service(service: &model::Service) -> ComposeService {
    let (condition, attempts) = match service.restart {
        lab::RestartPlan::No => ("none", None),
        lab::RestartPlan::OnFailure => ("on-failure", Some(service.max_restarts)),
        lab::RestartPlan::Always => ("any", None),
    };
    ComposeService {
        image: service.image.clone(),
        command: service.args.clone(),
        // Read by `docker stack deploy` on the deploying machine.
        env_file: vec![format!("./secrets/{}-env", service.name)],
        healthcheck: service.health.as_ref().map(|argv| service_healthcheck(argv)),
        networks: vec![NETWORK.into()],
        deploy: Some(deploy(condition, attempts, None)),
        ..ComposeService::default()
    }
}
