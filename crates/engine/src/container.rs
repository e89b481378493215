//! A node's container: how it is created (its volume, the lab network under
//! its node name, its port on 127.0.0.1 only, a larger `/dev/shm`, initdb on
//! first start) and its lifecycle: start, stop, kill, pause, restart, remove,
//! inspect, wait, logs, and the partition of its network link.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkConnectRequest,
    NetworkDisconnectRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use model::Secret;

use crate::image::{DATA_MOUNT, PGDATA};
use crate::lab::{container_name, labels, network_name};
use crate::{Engine, EngineError};

/// The port Postgres listens on inside every container.
pub const PG_PORT: u16 = 5432;

/// `/dev/shm` for Postgres: the engine's 64 MB default is too small for
/// parallel query and large `shared_buffers`.
pub const DEFAULT_SHM_BYTES: i64 = 256 * 1024 * 1024;

/// Everything the engine needs to create one Postgres node's container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub lab: String,
    pub node: String,
    /// An image reference, e.g. [`crate::BuiltImage::reference`].
    pub image: String,
    /// The port published on 127.0.0.1 (chosen by the lab's port logic).
    pub host_port: u16,
    /// `postgresql.conf` settings, passed as `-c key=value`.
    pub settings: Vec<(String, String)>,
    /// With a password, TCP connections need it (scram); without, the lab
    /// network and the host's 127.0.0.1 port are trusted (tests only).
    pub superuser_password: Option<Secret>,
    pub shm_bytes: i64,
    /// A memory limit in bytes, none by default.
    pub memory_bytes: Option<i64>,
}

impl ContainerSpec {
    /// A node with the defaults: no settings, no password, 256 MB shm.
    pub fn new(lab: &str, node: &str, image: &str, host_port: u16) -> ContainerSpec {
        ContainerSpec {
            lab: lab.into(),
            node: node.into(),
            image: image.into(),
            host_port,
            settings: Vec::new(),
            superuser_password: None,
            shm_bytes: DEFAULT_SHM_BYTES,
            memory_bytes: None,
        }
    }

    /// The container's name, which is also its host name on the lab network.
    pub fn name(&self) -> String {
        container_name(&self.lab, &self.node)
    }
}

/// A container's state as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// The main process's pid on the host (0 when not running).
    pub pid: i64,
    pub restart_count: i64,
    pub started_at: String,
}

/// The shell script the container runs: initdb into the volume on first
/// start, then Postgres in the foreground as the image's (host-pinned) user.
const ENTRYPOINT: &str = r#"set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=""; auth=trust
  if [ -s /tmp/prodhome-pwfile ]; then pw="--pwfile=/tmp/prodhome-pwfile"; auth=scram-sha-256; fi
  initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=$auth $pw --no-instructions >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }
  printf 'local all all trust\nhost all all samenet %s\nhost replication all samenet %s\n' $auth $auth >"$PGDATA/pg_hba.conf"
fi
rm -f /tmp/prodhome-pwfile
exec postgres "$@"
"#;

impl Engine {
    /// Creates the node's network, volume and container (replacing a stale
    /// container of the same name; the volume and its data are kept).
    pub async fn create_postgres(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let network = self.ensure_network(&spec.lab).await?;
        let volume = self.ensure_volume(&spec.lab, &spec.node).await?;
        let name = spec.name();
        self.remove(&name).await?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), postgres_body(spec, &network, &volume))
            .await
            .map_err(EngineError::api(format!("create container {name}")))?;
        if let Some(password) = &spec.superuser_password
            && let Err(e) = self.upload_password(&name, password).await
        {
            self.remove(&name).await?;
            return Err(e);
        }
        Ok(name)
    }

    /// Starts `name`; a port already taken on 127.0.0.1 is
    /// [`EngineError::PortTaken`] and leaves no container behind.
    pub async fn start(&self, name: &str, host_port: u16) -> Result<(), EngineError> {
        let Err(e) = self.docker.start_container(name, None).await else {
            return Ok(());
        };
        let text = e.to_string();
        if text.contains("port is already allocated") || text.contains("address already in use") {
            self.remove(name).await?;
            return Err(EngineError::PortTaken {
                port: host_port,
                container: name.into(),
            });
        }
        Err(EngineError::api(format!("start container {name}"))(e))
    }

    /// Stops `name`: SIGTERM, then SIGKILL after `timeout`.
    pub async fn stop(&self, name: &str, timeout: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptionsBuilder::new()
            .t(timeout.as_secs() as i32)
            .build();
        not_modified_ok(
            self.docker.stop_container(name, Some(options)).await,
            &format!("stop {name}"),
        )
    }

    /// Sends `signal` (e.g. `SIGKILL`, `SIGHUP`) to the container's main process.
    pub async fn kill(&self, name: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        self.docker
            .kill_container(name, Some(options))
            .await
            .map_err(EngineError::api(format!("send {signal} to {name}")))
    }

    /// Freezes every process of the container (cgroup freezer).
    pub async fn pause(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .pause_container(name)
            .await
            .map_err(EngineError::api(format!("pause {name}")))
    }

    pub async fn unpause(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .unpause_container(name)
            .await
            .map_err(EngineError::api(format!("unpause {name}")))
    }

    /// Stops (with `timeout`) and starts the container again.
    pub async fn restart(&self, name: &str, timeout: Duration) -> Result<(), EngineError> {
        let options = RestartContainerOptionsBuilder::new()
            .t(timeout.as_secs() as i32)
            .build();
        self.docker
            .restart_container(name, Some(options))
            .await
            .map_err(EngineError::api(format!("restart {name}")))
    }

    /// Removes the container (killing it first); gone already is fine.
    pub async fn remove(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(())
            }
            Err(e) => Err(EngineError::api(format!("remove container {name}"))(e)),
        }
    }

    /// The container's state: running, paused, exit code, OOM, pid.
    pub async fn inspect(&self, name: &str) -> Result<ContainerState, EngineError> {
        let info = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(EngineError::api(format!("inspect {name}")))?;
        let state = info.state.unwrap_or_default();
        Ok(ContainerState {
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            pid: state.pid.unwrap_or(0),
            restart_count: info.restart_count.unwrap_or(0),
            started_at: state.started_at.unwrap_or_default(),
        })
    }

    /// Waits until the container's main process exits; its exit code.
    pub async fn wait_exit(&self, name: &str) -> Result<i64, EngineError> {
        let mut stream = self.docker.wait_container(name, None);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(EngineError::api(format!("wait for {name}"))(e)),
            None => Err(EngineError::Exec {
                container: name.into(),
                what: "waiting for the exit".into(),
                message: "the engine closed the wait without a status".into(),
            }),
        }
    }

    /// The container's log (stdout and stderr) as lines; `follow` keeps
    /// the stream open for new lines, `tail` limits the history.
    pub fn logs(
        &self,
        name: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> impl Stream<Item = Result<String, EngineError>> + use<> {
        let tail = tail.map_or("all".to_owned(), |n| n.to_string());
        let options = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let what = format!("stream the log of {name}");
        self.docker.logs(name, Some(options)).map(move |item| {
            item.map(|out| String::from_utf8_lossy(&out.into_bytes()).into_owned())
                .map_err(EngineError::api(what.clone()))
        })
    }

    /// The last `lines` lines of the container's log, as one string.
    pub async fn log_tail(&self, name: &str, lines: usize) -> String {
        let chunks: Vec<_> = self.logs(name, false, Some(lines)).collect().await;
        chunks.into_iter().filter_map(Result::ok).collect()
    }

    /// Cuts the node off the lab network (a partition); the container runs on.
    pub async fn partition(&self, lab: &str, node: &str) -> Result<(), EngineError> {
        let request = NetworkDisconnectRequest {
            container: container_name(lab, node),
            force: Some(true),
        };
        self.docker
            .disconnect_network(&network_name(lab), request)
            .await
            .map_err(EngineError::api(format!(
                "disconnect {node} from the lab network"
            )))
    }

    /// Puts the node back on the lab network under its node name.
    pub async fn reconnect(&self, lab: &str, node: &str) -> Result<(), EngineError> {
        let request = NetworkConnectRequest {
            container: container_name(lab, node),
            endpoint_config: Some(endpoint(node)),
        };
        self.docker
            .connect_network(&network_name(lab), request)
            .await
            .map_err(EngineError::api(format!("connect {node} to the lab network")))
    }

    async fn upload_password(&self, name: &str, password: &Secret) -> Result<(), EngineError> {
        let tar = crate::image::single_file_tar("prodhome-pwfile", password.expose().as_bytes(), 0o600)?;
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
            .path("/tmp")
            .build();
        self.docker
            .upload_to_container(name, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(EngineError::api(format!("upload the password file to {name}")))
    }
}

fn endpoint(node: &str) -> EndpointSettings {
    EndpointSettings {
        aliases: Some(vec![node.to_owned()]),
        ..Default::default()
    }
}

fn postgres_body(spec: &ContainerSpec, network: &str, volume: &str) -> ContainerCreateBody {
    let mut cmd = vec!["-c".into(), ENTRYPOINT.into(), "postgres".into()];
    let base = [
        ("listen_addresses", "*"),
        ("port", "5432"),
        ("wal_level", "logical"),
    ];
    for (key, value) in base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(spec.settings.iter().cloned())
    {
        cmd.push("-c".into());
        cmd.push(format!("{key}={value}"));
    }
    let port_key = format!("{PG_PORT}/tcp");
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(spec.host_port.to_string()),
    };
    let host_config = HostConfig {
        port_bindings: Some(HashMap::from([(port_key.clone(), Some(vec![binding]))])),
        mounts: Some(vec![Mount {
            target: Some(DATA_MOUNT.into()),
            source: Some(volume.into()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }]),
        shm_size: Some(spec.shm_bytes),
        memory: spec.memory_bytes,
        network_mode: Some(network.into()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: Some(vec!["/bin/sh".into()]),
        cmd: Some(cmd),
        env: Some(vec![format!("PGDATA={PGDATA}")]),
        labels: Some(labels(&spec.lab, Some(&spec.node))),
        exposed_ports: Some(vec![port_key]),
        stop_timeout: Some(30),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint(&spec.node))])),
        }),
        ..Default::default()
    }
}

/// A stop of a container already stopped answers 304: that is success.
fn not_modified_ok(result: Result<(), bollard::errors::Error>, what: &str) -> Result<(), EngineError> {
    match result {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        Err(e) => Err(EngineError::api(what)(e)),
    }
}

impl Engine {
    /// Runs `image` once with `args` in the lab (labelled, on no network),
    /// waits for it to exit and removes it; its exit code.
    pub async fn run_once(
        &self,
        lab: &str,
        name: &str,
        image: &str,
        args: &[&str],
    ) -> Result<i64, EngineError> {
        let container = container_name(lab, name);
        self.remove(&container).await?;
        let body = ContainerCreateBody {
            image: Some(image.into()),
            cmd: Some(args.iter().map(|a| a.to_string()).collect()),
            labels: Some(labels(lab, Some(name))),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&container).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(EngineError::api(format!("create container {container}")))?;
        let result = async {
            self.docker
                .start_container(&container, None)
                .await
                .map_err(EngineError::api(format!("start container {container}")))?;
            self.wait_exit(&container).await
        }
        .await;
        self.remove(&container).await?;
        result
    }
}
