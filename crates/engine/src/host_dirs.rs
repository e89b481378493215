//! A Postgres container over a data directory prodhome prepared on the host
//! (initdb, configuration, template cache): the directories are bind-mounted
//! at the same paths, the server listens inside on the node's own port, and
//! the host's unix socket directory is the server's, so the daemon's admin
//! connections work unchanged. The container keeps the lab network, the
//! node-name alias, 127.0.0.1-only publishing and the larger `/dev/shm`.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use crate::container::DEFAULT_SHM_BYTES;
use crate::lab::{container_name, labels};
use crate::{Engine, EngineError};

/// A node whose data lives in host directories.
#[derive(Debug, Clone)]
pub struct HostDirNode {
    pub lab: String,
    pub node: String,
    pub image: String,
    /// The port the server listens on inside and is published at on 127.0.0.1.
    pub port: u16,
    /// Directories bind-mounted at the same path (data, socket).
    pub dirs: Vec<PathBuf>,
    /// Arguments after `postgres` (`-D DIR`, `-c key=value`…).
    pub args: Vec<String>,
}

impl Engine {
    /// Creates the lab network and the node's container (replacing a stale
    /// one of the same name). The engine does not restart it (a `docker
    /// kill` is "manual" to the engine anyway): the caller's monitor does.
    pub async fn create_host_dir_postgres(&self, spec: &HostDirNode) -> Result<String, EngineError> {
        let network = self.ensure_network(&spec.lab).await?;
        let name = container_name(&spec.lab, &spec.node);
        self.remove(&name).await?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), body(spec, &network))
            .await
            .map_err(EngineError::api(format!("create container {name}")))?;
        Ok(name)
    }
}

fn body(spec: &HostDirNode, network: &str) -> ContainerCreateBody {
    let port_key = format!("{}/tcp", spec.port);
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(spec.port.to_string()),
    };
    let binds = spec
        .dirs
        .iter()
        .map(|d| format!("{0}:{0}", d.display()))
        .collect();
    let host_config = HostConfig {
        port_bindings: Some(HashMap::from([(port_key.clone(), Some(vec![binding]))])),
        binds: Some(binds),
        shm_size: Some(DEFAULT_SHM_BYTES),
        network_mode: Some(network.into()),
        ..Default::default()
    };
    let endpoint = EndpointSettings {
        aliases: Some(vec![spec.node.clone()]),
        ..Default::default()
    };
    let mut cmd = vec!["postgres".to_owned()];
    cmd.extend(spec.args.iter().cloned());
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(cmd),
        labels: Some(labels(&spec.lab, Some(&spec.node))),
        exposed_ports: Some(vec![port_key]),
        // Postgres's fast shutdown, as natively: SIGTERM would wait for
        // every client (walsenders included) to leave.
        stop_signal: Some("SIGINT".into()),
        stop_timeout: Some(60),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
        }),
        ..Default::default()
    }
}
