//! `prodhome export k8s`: Kubernetes manifests from k8s-openapi's typed
//! structures. Per Postgres node a StatefulSet (one replica, its volume
//! claim template) and a headless Service named after the node, so the
//! node's name resolves to its pod as it does on the compose network; one
//! Secret with every password; ConfigMaps with the lab file (and what it
//! names) and each node's postgresql.conf and pg_hba.conf; the controller
//! as a Deployment with its Service. `--cnpg` writes the nodes as
//! CloudNativePG resources instead ([`crate::cnpg`]).
//!
//! Files: `secrets.yaml` (0600), `config.yaml`, `nodes.yaml` (or
//! `cnpg.yaml`), `controller.yaml` (with the lab's services).

mod apps;
mod nodes;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::files::{Bundle, File};
use crate::model::Deployable;
use crate::{ExportError, cnpg};

/// The label every object carries, with the lab's name.
pub(crate) const LAB_LABEL: &str = "prodhome.lab";

/// The k8s export of `lab`; with `cnpg`, the nodes as CNPG clusters.
pub fn generate(lab: &Deployable, cnpg: bool) -> Result<Bundle, ExportError> {
    let mut secrets = secrets(lab);
    if cnpg {
        secrets.extend(cnpg::auth_secrets(lab));
    }
    let mut files = vec![
        File::secret("secrets.yaml", all(&secrets)?),
        File::public("config.yaml", all(&config_maps(lab, !cnpg))?),
    ];
    if cnpg {
        files.push(File::public("cnpg.yaml", cnpg::generate(lab)?));
    } else {
        files.push(File::public("nodes.yaml", nodes::generate(lab)?));
    }
    files.push(File::public("controller.yaml", apps::generate(lab, cnpg)?));
    Ok(Bundle {
        kind: if cnpg { "k8s-cnpg" } else { "k8s" }.into(),
        files,
    })
}

/// A name Kubernetes accepts (DNS-1123): lab names and node names may hold
/// `_`, which it does not.
pub(crate) fn dns_name(name: &str) -> String {
    name.replace('_', "-")
}

/// The one Secret holding every password: `LAB-secrets`.
pub(crate) fn secret_name(lab: &Deployable) -> String {
    format!("{}-secrets", dns_name(&lab.lab))
}

/// The ConfigMap holding the lab file and what it names: `LAB-lab`.
pub(crate) fn lab_config_name(lab: &Deployable) -> String {
    format!("{}-lab", dns_name(&lab.lab))
}

pub(crate) fn meta(lab: &Deployable, name: String, extra: &[(&str, &str)]) -> ObjectMeta {
    let mut labels = labels(lab);
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    ObjectMeta {
        name: Some(name),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

pub(crate) fn labels(lab: &Deployable) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/part-of".to_string(), "prodhome".to_string()),
        (LAB_LABEL.to_string(), lab.lab.clone()),
    ])
}

fn secrets(lab: &Deployable) -> Vec<Secret> {
    let data = lab
        .secrets
        .iter()
        .map(|s| (s.name.clone(), s.value.expose().to_string()))
        .collect();
    let mut out = vec![Secret {
        metadata: meta(lab, secret_name(lab), &[]),
        string_data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }];
    // A service's environment, one key per variable, for `envFrom`.
    for service in &lab.services {
        out.push(Secret {
            metadata: meta(lab, format!("{}-env", dns_name(&service.name)), &[]),
            string_data: Some(service.env.iter().cloned().collect()),
            type_: Some("Opaque".into()),
            ..Secret::default()
        });
    }
    out
}

fn config_maps(lab: &Deployable, with_nodes: bool) -> Vec<ConfigMap> {
    let files = lab
        .configs
        .iter()
        .map(|c| (c.key.clone(), c.text.clone()))
        .collect();
    let mut out = vec![ConfigMap {
        metadata: meta(lab, lab_config_name(lab), &[]),
        data: Some(files),
        ..ConfigMap::default()
    }];
    if with_nodes {
        for node in &lab.nodes {
            let data = BTreeMap::from([
                ("postgresql.conf".to_string(), node.conf.clone()),
                ("pg_hba.conf".to_string(), crate::model::PG_HBA.to_string()),
            ]);
            out.push(ConfigMap {
                metadata: meta(lab, format!("{}-conf", dns_name(&node.name)), &[]),
                data: Some(data),
                ..ConfigMap::default()
            });
        }
    }
    out
}

/// A volume of the lab's Secret holding only `keys`, readable by the
/// pod's group (`fsGroup`) and no one else.
pub(crate) fn secret_volume(lab: &Deployable, name: &str, keys: &[String]) -> Volume {
    use k8s_openapi::api::core::v1::{KeyToPath, SecretVolumeSource};
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name(lab)),
            default_mode: Some(0o440),
            items: Some(
                keys.iter()
                    .map(|k| KeyToPath {
                        key: k.clone(),
                        path: k.clone(),
                        mode: None,
                    })
                    .collect(),
            ),
            optional: None,
        }),
        ..Volume::default()
    }
}

/// The pod runs as the image's account; `fsGroup` makes a fresh volume
/// and the secret files its own.
pub(crate) fn security_context(lab: &Deployable) -> k8s_openapi::api::core::v1::PodSecurityContext {
    let (uid, gid) = lab.postgres_ids;
    k8s_openapi::api::core::v1::PodSecurityContext {
        run_as_user: Some(uid.into()),
        run_as_group: Some(gid.into()),
        run_as_non_root: Some(true),
        fs_group: Some(gid.into()),
        ..Default::default()
    }
}

/// One object as YAML.
pub(crate) fn yaml<T: Serialize>(object: &T) -> Result<String, ExportError> {
    serde_yaml::to_string(object).map_err(|source| ExportError::Yaml {
        what: "a Kubernetes manifest".into(),
        source,
    })
}

/// Objects already written as YAML, as one multi-document file.
pub(crate) fn documents(docs: Vec<String>) -> String {
    let mut out = String::from("# Written by `prodhome export k8s`: change the lab file and export again.\n");
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&doc);
    }
    out
}

/// Every object of `objects` as one multi-document file.
fn all<T: Serialize>(objects: &[T]) -> Result<String, ExportError> {
    Ok(documents(objects.iter().map(yaml).collect::<Result<_, _>>()?))
}
