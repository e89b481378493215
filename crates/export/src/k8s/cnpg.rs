//! `prodhome export k8s --cnpg`: each node as a CloudNativePG `Cluster`
//! (one instance), each replication as its `Publication` on the publisher
//! and one `Subscription` per subscriber, with the basic-auth Secrets CNPG
//! reads passwords from. CNPG's resources are not in k8s-openapi: they are
//! this module's own typed structures, after CNPG's API reference
//! (`postgresql.cnpg.io/v1`). The subscribers reach their publisher as an
//! `externalCluster` at its `NODE-rw` Service, as `prodhome_repl`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde::Serialize;

use super::common::{dns_name, documents, meta, yaml};
use crate::ExportError;
use crate::model::Deployable;

const API_VERSION: &str = "postgresql.cnpg.io/v1";
/// The role subscriptions connect as (pg's `REPLICATION_ROLE`).
const REPLICATION_ROLE: &str = "prodhome_repl";

/// A CNPG resource: `apiVersion`, `kind`, metadata and its spec.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    pub spec: S,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub instances: u32,
    pub image_name: String,
    pub enable_superuser_access: bool,
    pub superuser_secret: LocalRef,
    pub storage: Storage,
    pub postgresql: PostgresConfig,
    pub managed: Managed,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_clusters: Vec<ExternalCluster>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

#[derive(Debug, Serialize)]
pub struct LocalRef {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct Storage {
    pub size: String,
}

#[derive(Debug, Serialize)]
pub struct PostgresConfig {
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct Managed {
    pub roles: Vec<Role>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    pub ensure: String,
    pub login: bool,
    pub replication: bool,
    pub password_secret: LocalRef,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalCluster {
    pub name: String,
    pub connection_parameters: BTreeMap<String, String>,
    pub password: SecretKey,
}

#[derive(Debug, Serialize)]
pub struct SecretKey {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    pub node_selector: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct PublicationSpec {
    pub cluster: LocalRef,
    pub dbname: String,
    pub name: String,
    pub target: PublicationTarget,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicationTarget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_tables: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<PublicationObject>,
}

#[derive(Debug, Serialize)]
pub struct PublicationObject {
    pub table: Table,
}

#[derive(Debug, Serialize)]
pub struct Table {
    pub name: String,
    pub schema: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    pub cluster: LocalRef,
    pub dbname: String,
    pub name: String,
    pub publication_name: String,
    pub external_cluster_name: String,
}

fn resource<S>(lab: &Deployable, kind: &str, name: String, spec: S) -> Resource<S> {
    Resource {
        api_version: API_VERSION.into(),
        kind: kind.into(),
        metadata: meta(lab, name, &[]),
        spec,
    }
}

/// The basic-auth Secrets CNPG reads: `NODE-superuser-auth` and
/// `NODE-replication-auth` (for secrets.yaml).
pub fn auth_secrets(lab: &Deployable) -> Vec<Secret> {
    let mut out = Vec::new();
    for node in &lab.nodes {
        for (what, user) in [("superuser", "postgres"), ("replication", REPLICATION_ROLE)] {
            let value = lab
                .secrets
                .iter()
                .find(|s| s.name == format!("{}-{what}", node.name))
                .map(|s| s.value.expose().to_string())
                .unwrap_or_default();
            out.push(Secret {
                metadata: meta(lab, format!("{}-{what}-auth", dns_name(&node.name)), &[]),
                type_: Some("kubernetes.io/basic-auth".into()),
                string_data: Some(BTreeMap::from([
                    ("username".to_string(), user.to_string()),
                    ("password".to_string(), value),
                ])),
                ..Secret::default()
            });
        }
    }
    out
}

/// `cnpg.yaml`: the Clusters, then the Publications and Subscriptions.
pub fn generate(lab: &Deployable) -> Result<String, ExportError> {
    let mut docs = Vec::new();
    for node in &lab.nodes {
        docs.push(yaml(&cluster(lab, node))?);
    }
    for r in &lab.replications {
        docs.push(yaml(&publication(lab, r))?);
        for sub in &r.subscribers {
            let spec = SubscriptionSpec {
                cluster: LocalRef { name: dns_name(sub) },
                dbname: "postgres".into(),
                name: format!("{}_{sub}", r.name),
                publication_name: r.name.clone(),
                external_cluster_name: dns_name(&r.publisher),
            };
            let name = dns_name(&format!("{}-{sub}", r.name));
            docs.push(yaml(&resource(lab, "Subscription", name, spec))?);
        }
    }
    Ok(documents(docs))
}

fn cluster(lab: &Deployable, node: &crate::model::Node) -> Resource<ClusterSpec> {
    let name = dns_name(&node.name);
    // Every publisher this node subscribes to, once.
    let mut publishers: Vec<&str> = lab
        .replications
        .iter()
        .filter(|r| r.subscribers.contains(&node.name))
        .map(|r| r.publisher.as_str())
        .collect();
    publishers.sort_unstable();
    publishers.dedup();
    let external_clusters = publishers
        .into_iter()
        .map(|p| ExternalCluster {
            name: dns_name(p),
            connection_parameters: BTreeMap::from([
                ("host".to_string(), format!("{}-rw", dns_name(p))),
                ("user".to_string(), REPLICATION_ROLE.to_string()),
                ("dbname".to_string(), "postgres".to_string()),
            ]),
            password: SecretKey {
                name: format!("{}-replication-auth", dns_name(p)),
                key: "password".into(),
            },
        })
        .collect();
    let spec = ClusterSpec {
        instances: 1,
        image_name: format!("ghcr.io/cloudnative-pg/postgresql:{}", lab.postgres_version),
        enable_superuser_access: true,
        superuser_secret: LocalRef {
            name: format!("{name}-superuser-auth"),
        },
        storage: Storage { size: "1Gi".into() },
        postgresql: PostgresConfig {
            parameters: parameters(&node.settings),
        },
        managed: Managed {
            roles: vec![Role {
                name: REPLICATION_ROLE.into(),
                ensure: "present".into(),
                login: true,
                replication: true,
                password_secret: LocalRef {
                    name: format!("{name}-replication-auth"),
                },
            }],
        },
        external_clusters,
        affinity: node.host.as_ref().map(|h| Affinity {
            node_selector: BTreeMap::from([("kubernetes.io/hostname".to_string(), h.clone())]),
        }),
    };
    resource(lab, "Cluster", name, spec)
}

/// The lab's own settings, unquoted as CNPG's parameters map wants them;
/// CNPG owns the rest of postgresql.conf.
fn parameters(settings: &[(String, String)]) -> BTreeMap<String, String> {
    let mut params = BTreeMap::from([("wal_level".to_string(), "logical".to_string())]);
    for (key, value) in settings {
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .map(|v| v.replace("''", "'"))
            .unwrap_or_else(|| value.clone());
        params.insert(key.clone(), value);
    }
    params
}

fn publication(lab: &Deployable, r: &lab::ReplicationPlan) -> Resource<PublicationSpec> {
    let target = match &r.tables {
        lab::Tables::All => PublicationTarget {
            all_tables: Some(true),
            objects: Vec::new(),
        },
        lab::Tables::List(tables) => PublicationTarget {
            all_tables: None,
            objects: tables
                .iter()
                .map(|t| {
                    let (schema, name) = t.split_once('.').unwrap_or(("public", t));
                    PublicationObject {
                        table: Table {
                            name: name.into(),
                            schema: schema.into(),
                        },
                    }
                })
                .collect(),
        },
    };
    let spec = PublicationSpec {
        cluster: LocalRef {
            name: dns_name(&r.publisher),
        },
        dbname: "postgres".into(),
        name: r.name.clone(),
        target,
    };
    resource(lab, "Publication", dns_name(&r.name), spec)
}
