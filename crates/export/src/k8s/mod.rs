//! `prodhome export k8s`: Kubernetes manifests from k8s-openapi's typed
//! structures. Per Postgres node a StatefulSet (one replica, its volume
//! claim template) and a headless Service named after the node, so the
//! node's name resolves to its pod as it does on the compose network; one
//! Secret with every password; ConfigMaps with the lab file (and what it
//! names) and each node's postgresql.conf and pg_hba.conf; the controller
//! as a Deployment with its Service. `--cnpg` writes the nodes as
//! CloudNativePG resources instead ([`cnpg`]).
//!
//! Files: `secrets.yaml` (0600), `config.yaml`, `nodes.yaml` (or
//! `cnpg.yaml`), `controller.yaml` (with the lab's services).

mod apps;
pub mod cnpg;
pub(crate) mod common;
mod nodes;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde::Serialize;

use common::{dns_name, documents, lab_config_name, meta, secret_name, yaml};

use crate::ExportError;
use crate::files::{Bundle, File};
use crate::model::Deployable;

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

/// Every object of `objects` as one multi-document file.
fn all<T: Serialize>(objects: &[T]) -> Result<String, ExportError> {
    Ok(documents(objects.iter().map(yaml).collect::<Result<_, _>>()?))
}
