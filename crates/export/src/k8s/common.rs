//! What every manifest generator shares: names Kubernetes accepts, the
//! lab's labels, the Secret volume and pod security context, and the YAML
//! writing. Below `k8s`, `nodes`, `apps` and `cnpg`, so none imports another.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Volume;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::ExportError;
use crate::model::Deployable;

/// The label every object carries, with the lab's name.
pub(crate) const LAB_LABEL: &str = "prodhome.lab";

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
