//! One StatefulSet and one headless Service per Postgres node.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::{dns_name, documents, meta, secret_volume, security_context, yaml};
use crate::ExportError;
use crate::model::{self, Deployable, NODE_CONF_DIR, PG_PORT, SECRETS_DIR};

/// The label that selects one node's pod.
const NODE_LABEL: &str = "prodhome.lab/node";
/// Where the node's volume is mounted (its data directory inside).
const DATA_MOUNT: &str = "/var/lib/postgresql/data";
/// Each node's claim: enough for a lab, an edit away from more.
const STORAGE: &str = "1Gi";

/// `nodes.yaml`: for each node its headless Service, then its StatefulSet.
pub(super) fn generate(lab: &Deployable) -> Result<String, ExportError> {
    let mut docs = Vec::new();
    for node in &lab.nodes {
        docs.push(yaml(&headless_service(lab, node))?);
        docs.push(yaml(&stateful_set(lab, node))?);
    }
    Ok(documents(docs))
}

fn selector(node: &model::Node) -> BTreeMap<String, String> {
    BTreeMap::from([(NODE_LABEL.to_string(), node.name.clone())])
}

/// `clusterIP: None`: the node's name resolves to its pod's address, as
/// on compose's network, and subscriptions keep one server each.
fn headless_service(lab: &Deployable, node: &model::Node) -> Service {
    Service {
        metadata: meta(lab, dns_name(&node.name), &[(NODE_LABEL, &node.name)]),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector(node)),
            ports: Some(vec![ServicePort {
                name: Some("postgres".into()),
                port: PG_PORT.into(),
                target_port: Some(IntOrString::Int(PG_PORT.into())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A real query from inside the pod, as readiness and liveness.
pub(super) fn query_probe(period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(model::node_healthcheck()),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn stateful_set(lab: &Deployable, node: &model::Node) -> StatefulSet {
    let name = dns_name(&node.name);
    let mut pod_labels = super::common::labels(lab);
    pod_labels.extend(selector(node));
    let node_selector = node
        .host
        .as_ref()
        .map(|h| BTreeMap::from([("kubernetes.io/hostname".to_string(), h.clone())]));
    StatefulSet {
        metadata: meta(lab, name.clone(), &[(NODE_LABEL, &node.name)]),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name),
            selector: LabelSelector {
                match_labels: Some(selector(node)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    node_selector,
                    security_context: Some(security_context(lab)),
                    containers: vec![postgres_container(lab, node)],
                    volumes: Some(pod_volumes(lab, node)),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![data_claim(lab)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn postgres_container(lab: &Deployable, node: &model::Node) -> Container {
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    };
    Container {
        name: "postgres".into(),
        image: Some(lab.postgres_image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(model::node_command(node, "$")),
        env: Some(vec![EnvVar {
            name: "PGDATA".into(),
            value: Some(format!("{DATA_MOUNT}/pgdata")),
            ..EnvVar::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some("postgres".into()),
            container_port: PG_PORT.into(),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(query_probe(2, 3)),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(30),
            ..query_probe(10, 6)
        }),
        volume_mounts: Some(vec![
            mount("data", DATA_MOUNT, false),
            mount("conf", NODE_CONF_DIR, true),
            mount("secrets", SECRETS_DIR, true),
            mount("dshm", "/dev/shm", false),
        ]),
        ..Container::default()
    }
}

fn pod_volumes(lab: &Deployable, node: &model::Node) -> Vec<Volume> {
    vec![
        Volume {
            name: "conf".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{}-conf", dns_name(&node.name)),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        secret_volume(lab, "secrets", std::slice::from_ref(&node.superuser_secret)),
        // A container's /dev/shm is 64 MB: too small for parallel queries.
        Volume {
            name: "dshm".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("256Mi".into())),
            }),
            ..Volume::default()
        },
    ]
}

fn data_claim(lab: &Deployable) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(lab, "data".into(), &[]),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(STORAGE.into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
