//! A lab's link proxy: one container on the lab network carrying every
//! replication link of the lab (`prodhome link-serve`), so that a
//! subscriber's connection to its publisher passes through prodhome's proxy
//! without leaving the lab network. It runs from the lab's Postgres image
//! (which carries prodhome's libraries) the prodhome executable bind-mounted
//! read-only at `/usr/local/bin/prodhome`; its control endpoint is published
//! on 127.0.0.1 only, at a port the daemon keeps; the secret token reaches
//! it as a read-only mounted file, never on its command line or in its
//! environment.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use crate::lab::{labels, network_name};
use crate::{Engine, EngineError};

/// Where the prodhome executable is mounted inside the container.
pub const LINK_PROXY_EXE: &str = "/usr/local/bin/prodhome";
/// Where the control token file is mounted inside the container.
pub const LINK_PROXY_TOKEN: &str = "/run/prodhome/links.token";
/// The control endpoint's port inside the container.
pub const LINK_PROXY_CONTROL_PORT: u16 = 7000;

/// The link proxy's container, also its host name on the lab network:
/// `prodhome-<lab>-link-proxy`. Node names have no `-`, so no node's
/// container can have this name.
pub fn link_proxy_name(lab: &str) -> String {
    format!("prodhome-{lab}-link-proxy")
}

/// What the link proxy's container runs.
#[derive(Debug, Clone)]
pub struct LinkProxySpec {
    pub lab: String,
    /// The lab's Postgres image.
    pub image: String,
    /// The prodhome executable on the host.
    pub exe: PathBuf,
    /// The token file on the host (0600, owned by `user`).
    pub token_file: PathBuf,
    /// `uid:gid` the proxy runs as.
    pub user: String,
    /// Arguments after `prodhome` (`link-serve …`).
    pub args: Vec<String>,
    /// The port on 127.0.0.1 the control endpoint is published at.
    pub control_port: u16,
}

impl Engine {
    /// Creates and starts the link proxy (replacing a stale one). The lab
    /// network must exist (the nodes' containers create it). A port taken
    /// on 127.0.0.1 is [`EngineError::PortTaken`]; nothing is left behind.
    /// Should the proxy die, the engine starts it again (at the same port).
    pub async fn start_link_proxy(&self, spec: &LinkProxySpec) -> Result<(), EngineError> {
        let name = link_proxy_name(&spec.lab);
        self.remove(&name).await?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), body(spec))
            .await
            .map_err(EngineError::api(format!("create container {name}")))?;
        self.start(&name, spec.control_port).await
    }
}

fn body(spec: &LinkProxySpec) -> ContainerCreateBody {
    let network = network_name(&spec.lab);
    let port_key = format!("{LINK_PROXY_CONTROL_PORT}/tcp");
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(spec.control_port.to_string()),
    };
    let binds = vec![
        format!("{}:{LINK_PROXY_EXE}:ro", spec.exe.display()),
        format!("{}:{LINK_PROXY_TOKEN}:ro", spec.token_file.display()),
    ];
    let host_config = HostConfig {
        port_bindings: Some(HashMap::from([(port_key.clone(), Some(vec![binding]))])),
        binds: Some(binds),
        network_mode: Some(network.clone()),
        // Replication stops while the proxy is gone: the engine brings it
        // back (the daemon removes it on the way down, so no policy outlives it).
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: Some(vec![LINK_PROXY_EXE.into()]),
        cmd: Some(spec.args.clone()),
        user: Some(spec.user.clone()),
        labels: Some(labels(&spec.lab, None)),
        exposed_ports: Some(vec![port_key]),
        // The proxy holds no state: there is nothing to wait for.
        stop_timeout: Some(1),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network, EndpointSettings::default())])),
        }),
        ..Default::default()
    }
}
