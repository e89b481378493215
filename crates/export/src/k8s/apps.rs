//! `controller.yaml`: the controller's Deployment, Service and state
//! claim, then a Deployment per lab service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, EnvVar, ExecAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe, SecretEnvSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::{dns_name, documents, lab_config_name, meta, secret_volume, security_context, yaml};
use crate::ExportError;
use crate::model::{self, CONTROLLER_PORT, Deployable, SECRETS_DIR, STATE_DIR};

const APP_LABEL: &str = "app.kubernetes.io/name";

/// The controller's objects, then the services'.
pub(super) fn generate(lab: &Deployable, cnpg: bool) -> Result<String, ExportError> {
    let mut docs = vec![
        yaml(&state_claim(lab))?,
        yaml(&controller_service(lab, cnpg))?,
        yaml(&controller(lab, cnpg))?,
    ];
    for service in &lab.services {
        docs.push(yaml(&app_deployment(lab, service))?);
    }
    Ok(documents(docs))
}

fn controller_name(lab: &Deployable) -> String {
    format!("{}-controller", dns_name(&lab.lab))
}

fn app_selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), name.to_string())])
}

fn state_claim(lab: &Deployable) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(lab, format!("{}-state", controller_name(lab)), &[]),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity("1Gi".into()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The dashboard and control API inside the cluster (`kubectl
/// port-forward` reaches it from a laptop).
fn controller_service(lab: &Deployable, cnpg: bool) -> Service {
    let name = controller_name(lab);
    Service {
        metadata: meta(lab, name.clone(), &[]),
        spec: Some(ServiceSpec {
            selector: Some(app_selector(&name)),
            ports: Some(controller_ports(lab, cnpg)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The dashboard's port, then each replication link's: subscriptions
/// connect to the controller's Service there (not under CloudNativePG,
/// whose subscriptions connect to the publisher itself).
fn controller_ports(lab: &Deployable, cnpg: bool) -> Vec<ServicePort> {
    let port = |name: String, port: u16| ServicePort {
        name: Some(name),
        port: port.into(),
        target_port: Some(IntOrString::Int(port.into())),
        ..ServicePort::default()
    };
    let mut ports = vec![port("http".into(), CONTROLLER_PORT)];
    let links = if cnpg {
        &[][..]
    } else {
        &lab.controller.link_ports[..]
    };
    for (i, p) in links.iter().enumerate() {
        ports.push(port(format!("link-{i}"), *p));
    }
    ports
}

fn deployment(lab: &Deployable, name: String, pod: PodSpec) -> Deployment {
    let mut pod_labels = super::common::labels(lab);
    pod_labels.extend(app_selector(&name));
    Deployment {
        metadata: meta(lab, name.clone(), &[(APP_LABEL, &name)]),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            // One at a time: two controllers would set replication up twice.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(app_selector(&name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn controller(lab: &Deployable, cnpg: bool) -> Deployment {
    let host = |n: &str| {
        if cnpg {
            format!("{}-rw", dns_name(n))
        } else {
            dns_name(n)
        }
    };
    let engine = if cnpg { "k8s-cnpg" } else { "k8s" };
    let mut env = crate::compose::controller_env(lab, engine, &controller_name(lab));
    env.insert("PRODHOME_NODE_HOSTS".into(), lab.node_hosts(host));
    let mount = |name: &str, path: &str, sub: Option<&str>| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        sub_path: sub.map(String::from),
        read_only: Some(name != "state"),
        ..VolumeMount::default()
    };
    let mut mounts = vec![
        mount("state", STATE_DIR, None),
        mount("secrets", SECRETS_DIR, None),
    ];
    // One file each, where the lab file's relative paths find it.
    mounts.extend(lab.configs.iter().map(|c| mount("lab", &c.target, Some(&c.key))));
    let container = Container {
        name: "controller".into(),
        image: Some(lab.controller.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(lab.controller.argv.clone()),
        env: Some(
            env.into_iter()
                .map(|(name, value)| EnvVar {
                    name,
                    value: Some(value),
                    ..EnvVar::default()
                })
                .collect(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: CONTROLLER_PORT.into(),
            ..ContainerPort::default()
        }]),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let volumes = vec![
        Volume {
            name: "state".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{}-state", controller_name(lab)),
                read_only: None,
            }),
            ..Volume::default()
        },
        secret_volume(lab, "secrets", &lab.controller.secrets),
        Volume {
            name: "lab".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: lab_config_name(lab),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let pod = PodSpec {
        security_context: Some(security_context(lab)),
        containers: vec![container],
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    deployment(lab, controller_name(lab), pod)
}

/// A lab service: its image, its arguments, its environment from its own
/// Secret, and its exec readiness probe when it has one. Kubernetes
/// restarts every Deployment's pods: `restart = "no"` has no equivalent.
fn app_deployment(lab: &Deployable, service: &model::Service) -> Deployment {
    let name = dns_name(&service.name);
    let container = Container {
        name: name.clone(),
        image: Some(service.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        args: (!service.args.is_empty()).then(|| service.args.clone()),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: format!("{name}-env"),
                optional: None,
            }),
            ..EnvFromSource::default()
        }]),
        readiness_probe: service.health.as_ref().map(|argv| Probe {
            exec: Some(ExecAction {
                command: Some(argv.clone()),
            }),
            period_seconds: Some(2),
            ..Probe::default()
        }),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        ..PodSpec::default()
    };
    deployment(lab, name, pod)
}
