//! An app service's container: created from an image the engine already
//! has (the user's, or a program packed by [`crate::ImageSpec::binary`]),
//! on the lab's network under the service's name, its probed ports
//! published on 127.0.0.1 only, labelled with the lab and the service.
//!
//! [`Engine::run_service`] runs one life of it in the foreground for a
//! supervised process (prodhome's `service-container` shim): create, start,
//! copy the container's log to the caller, wait for the exit, stop it on
//! request. The supervisor's restart policy, probes, events and log
//! rotation then apply to it as to a native service.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::lab::{LAB_LABEL, container_name};
use crate::{Engine, EngineError};

/// The variable the daemon hands a [`ServiceContainer`] to the shim in, as JSON.
pub const SPEC_VAR: &str = "PRODHOME_CONTAINER_SPEC";

/// The label naming the service a container runs.
pub const SERVICE_LABEL: &str = "prodhome.service";

/// How long the log copy may take to drain once the container has exited.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// Everything the engine needs to run one service's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceContainer {
    pub lab: String,
    pub service: String,
    /// An image reference the engine has (checked before `up` creates anything).
    pub image: String,
    /// The command: replaces the image's `CMD` when set.
    pub cmd: Option<Vec<String>>,
    /// The environment, references already resolved (in-network addresses).
    pub env: Vec<(String, String)>,
    /// Ports the service listens on in the container, published at the
    /// same number on 127.0.0.1 (where the host's probes look).
    pub ports: Vec<u16>,
    /// The signal the engine stops it with, e.g. `SIGTERM`.
    pub stop_signal: String,
    /// How long that signal has before the engine kills it.
    pub stop_timeout_secs: u64,
}

impl ServiceContainer {
    /// `prodhome-<lab>-<service>`, also its host name on the lab network
    /// (with the alias `<service>`).
    pub fn name(&self) -> String {
        container_name(&self.lab, &self.service)
    }
}

impl Engine {
    /// Fails with [`EngineError::NoImage`] unless the engine has `reference`:
    /// there is no registry to pull it from.
    pub async fn require_image(&self, reference: &str, service: &str) -> Result<String, EngineError> {
        self.image_id(reference)
            .await?
            .ok_or_else(|| EngineError::NoImage {
                image: reference.into(),
                service: service.into(),
            })
    }

    /// Creates the service's container (replacing a stale one of the same
    /// name), on the lab network; not started.
    pub async fn create_service(&self, spec: &ServiceContainer) -> Result<String, EngineError> {
        let network = self.ensure_network(&spec.lab).await?;
        let name = spec.name();
        self.remove(&name).await?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), service_body(spec, &network))
            .await
            .map_err(EngineError::api(format!("create container {name}")))?;
        Ok(name)
    }

    /// Runs one life of the service's container: created and started, its
    /// log copied to `out` as it comes, until it exits (its exit code) or
    /// `stop` resolves (then the engine stops it with its stop signal and
    /// timeout). The container is left for `down` (and its log for `logs`).
    pub async fn run_service(
        &self,
        spec: &ServiceContainer,
        stop: impl Future<Output = ()>,
        mut out: impl Write + Send + 'static,
    ) -> Result<i64, EngineError> {
        let name = self.create_service(spec).await?;
        self.start(&name, spec.ports.first().copied().unwrap_or(0))
            .await?;
        let logs = self.logs(&name, true, None);
        let copy = tokio::spawn(async move {
            let mut logs = std::pin::pin!(logs);
            while let Some(Ok(chunk)) = logs.next().await {
                if out
                    .write_all(chunk.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        let code = tokio::select! {
            code = self.wait_exit(&name) => code,
            () = stop => {
                self.stop(&name, Duration::from_secs(spec.stop_timeout_secs)).await?;
                self.wait_exit(&name).await
            }
        };
        // The rest of the log, for the one reading why it exited.
        let _ = tokio::time::timeout(LOG_DRAIN, copy).await;
        code
    }
}

fn service_body(spec: &ServiceContainer, network: &str) -> ContainerCreateBody {
    let ports: Vec<String> = spec.ports.iter().map(|p| format!("{p}/tcp")).collect();
    let bindings = spec
        .ports
        .iter()
        .map(|p| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(p.to_string()),
            };
            (format!("{p}/tcp"), Some(vec![binding]))
        })
        .collect();
    let labels = HashMap::from([
        (LAB_LABEL.to_owned(), spec.lab.clone()),
        (SERVICE_LABEL.to_owned(), spec.service.clone()),
    ]);
    let endpoint = EndpointSettings {
        aliases: Some(vec![spec.service.clone()]),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.cmd.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: Some(ports),
        stop_signal: Some(spec.stop_signal.clone()),
        stop_timeout: Some(spec.stop_timeout_secs as i64),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            network_mode: Some(network.into()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
        }),
        ..Default::default()
    }
}

impl Engine {
    /// A tcp readiness check of port `port` that container `name` publishes
    /// on 127.0.0.1. A bare connect would pass while the engine's port proxy
    /// listens, whatever runs inside: so the container's own network
    /// namespace (through its process's `/proc/PID/net/tcp`: the engine is
    /// local, its pids are this machine's) must hold a socket listening on
    /// the port, and the published port must accept.
    pub async fn probe_published(&self, name: &str, port: u16) -> Result<(), String> {
        let what = format!("tcp 127.0.0.1:{port} (published by container {name})");
        let state = self.inspect(name).await.map_err(|e| format!("{what}: {e}"))?;
        if !state.running || state.paused || state.pid <= 0 {
            return Err(format!("{what}: the container is {}", state.status));
        }
        if !listens(state.pid, port) {
            return Err(format!(
                "{what}: nothing listens on {port} in the container \
                 (a service in a container must listen on 0.0.0.0 or ::, not 127.0.0.1)"
            ));
        }
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map(drop)
            .map_err(|e| format!("{what}: {e}"))
    }
}

/// True when the network namespace of process `pid` has a TCP socket
/// listening on `port` (any address but loopback, which the engine's port
/// proxy cannot reach).
fn listens(pid: i64, port: u16) -> bool {
    ["tcp", "tcp6"].iter().any(|table| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
            .is_ok_and(|text| listening_ports(&text).any(|(loopback, p)| p == port && !loopback))
    })
}

/// (bound to loopback, port) of every LISTEN row of a `/proc/net/tcp[6]` table.
fn listening_ports(text: &str) -> impl Iterator<Item = (bool, u16)> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        if state != "0A" {
            return None;
        }
        let (addr, port) = local.rsplit_once(':')?;
        let loopback = addr == "0100007F" || addr == "00000000000000000000000001000000";
        Some((loopback, u16::from_str_radix(port, 16).ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_rows_are_read_with_their_address() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534 0 1 1\n\
           1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534 0 2 1\n\
           2: 0100007F:1F92 0100007F:D431 01 00000000:00000000 00:00000000 00000000 65534 0 3 1\n";
        let rows: Vec<_> = listening_ports(text).collect();
        assert_eq!(
            rows,
            [(false, 8080), (true, 8081)],
            "the established row is no listener"
        );
    }
}
