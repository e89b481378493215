//! The per-lab objects every container hangs off: the label that marks them,
//! the lab's private bridge network, a named volume per node, and `down`,
//! which removes everything carrying the lab's label.

use std::collections::HashMap;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use crate::{Engine, EngineError};

/// The label naming the lab an object belongs to.
pub const LAB_LABEL: &str = "prodhome.lab";
/// The label naming the node a container or volume belongs to.
pub const NODE_LABEL: &str = "prodhome.node";

/// The lab's network: `prodhome-<lab>`.
pub fn network_name(lab: &str) -> String {
    format!("prodhome-{lab}")
}

/// A node's container, also its name on the lab network: `prodhome-<lab>-<node>`.
pub fn container_name(lab: &str, node: &str) -> String {
    format!("prodhome-{lab}-{node}")
}

/// A node's data volume: `prodhome-<lab>-<node>-data`.
pub fn volume_name(lab: &str, node: &str) -> String {
    format!("prodhome-{lab}-{node}-data")
}

pub(crate) fn labels(lab: &str, node: Option<&str>) -> HashMap<String, String> {
    let mut labels = HashMap::from([(LAB_LABEL.to_owned(), lab.to_owned())]);
    if let Some(node) = node {
        labels.insert(NODE_LABEL.to_owned(), node.to_owned());
    }
    labels
}

fn lab_filter(lab: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{LAB_LABEL}={lab}")])])
}

/// What `down` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Engine {
    /// Creates the lab's bridge network (or keeps it when there). Ports it
    /// publishes default to 127.0.0.1 rather than every interface.
    pub async fn ensure_network(&self, lab: &str) -> Result<String, EngineError> {
        let name = network_name(lab);
        if self.networks(lab).await?.contains(&name) {
            return Ok(name);
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels(lab, None)),
            options: Some(HashMap::from([(
                "com.docker.network.bridge.host_binding_ipv4".to_owned(),
                "127.0.0.1".to_owned(),
            )])),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(EngineError::api(format!("create network {name}")))?;
        Ok(name)
    }

    /// Creates the node's data volume (kept when it exists: data survives).
    pub async fn ensure_volume(&self, lab: &str, node: &str) -> Result<String, EngineError> {
        let name = volume_name(lab, node);
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(labels(lab, Some(node))),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(EngineError::api(format!("create volume {name}")))?;
        Ok(name)
    }

    /// Names of every container (running or not) with the lab's label.
    pub async fn containers(&self, lab: &str) -> Result<Vec<String>, EngineError> {
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&lab_filter(lab))
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(EngineError::api("list containers"))?;
        Ok(list
            .into_iter()
            .filter_map(|c| c.names?.first().map(|n| n.trim_start_matches('/').to_owned()))
            .collect())
    }

    /// Names of the networks with the lab's label.
    pub async fn networks(&self, lab: &str) -> Result<Vec<String>, EngineError> {
        let options = ListNetworksOptionsBuilder::new()
            .filters(&lab_filter(lab))
            .build();
        let list = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(EngineError::api("list networks"))?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }

    /// Names of the volumes with the lab's label.
    pub async fn volumes(&self, lab: &str) -> Result<Vec<String>, EngineError> {
        let options = ListVolumesOptionsBuilder::new().filters(&lab_filter(lab)).build();
        let list = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(EngineError::api("list volumes"))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Removes every container and network of the lab, and its volumes when
    /// `purge`; objects already gone are not an error.
    pub async fn down(&self, lab: &str, purge: bool) -> Result<Removed, EngineError> {
        let mut removed = Removed::default();
        for name in self.containers(lab).await? {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            ignore_missing(self.docker.remove_container(&name, Some(options)).await, &name)?;
            removed.containers.push(name);
        }
        for name in self.networks(lab).await? {
            ignore_missing(self.docker.remove_network(&name).await, &name)?;
            removed.networks.push(name);
        }
        if purge {
            for name in self.volumes(lab).await? {
                let options = RemoveVolumeOptionsBuilder::new().force(true).build();
                ignore_missing(self.docker.remove_volume(&name, Some(options)).await, &name)?;
                removed.volumes.push(name);
            }
        }
        Ok(removed)
    }
}

fn ignore_missing(result: Result<(), bollard::errors::Error>, name: &str) -> Result<(), EngineError> {
    match result {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(EngineError::api(format!("remove {name}"))(e)),
    }
}
