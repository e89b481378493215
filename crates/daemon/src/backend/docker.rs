//! The Docker backend: each node's server in its own container on the lab's
//! network (`engine`), over the data directory prodhome prepared on the host
//! (bind-mounted at the same path, so initdb, the template cache, the
//! configuration and the admin socket are the native ones). A monitor task
//! turns what the engine reports into the supervisor's status and events,
//! and starts again a server that died unasked. The lab's replication
//! links run in one more container, the link proxy ([`start_link_proxy`]).

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use engine::{Engine, EngineError, HostDirNode};
use futures_util::StreamExt;
use model::{Event, EventKind, Exit, PointSender};
use pg::NodeSpec;
use supervisor::{Condition, UnitState, UnitStatus};
use tokio::sync::{mpsc, watch};

use super::{Node, NodeSignal, NotRunning, PeerAddr, initial_status, wait_for_status};
use crate::links::{LinkProxy, RemoteLink};

/// How often the monitor asks the engine and probes the server.
const TICK: Duration = Duration::from_millis(500);
/// How long `stop` lets the server shut down before the engine kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// The wait before starting a server that died unasked.
const BACKOFF: Duration = Duration::from_secs(1);
/// Restarts after which a node that keeps dying is left down.
const MAX_RESTARTS: u32 = 10;

/// What `up` prepares once for every Docker node: the engine and the image.
pub(crate) struct Prepared {
    pub(crate) engine: Engine,
    pub(crate) image: String,
    pub(crate) lab: String,
}

/// A server in a container.
#[derive(Clone)]
pub(crate) struct DockerNode {
    pub(crate) spec: NodeSpec,
    pub(crate) container: String,
    lab: String,
    /// Shared: the engine client is large, and a `Node` is cloned freely.
    engine: Arc<Engine>,
    status: Arc<watch::Sender<UnitStatus>>,
    /// Whether the node should run: an exit while false is expected.
    wanted: Arc<AtomicBool>,
}

/// Connects to the engine and builds (or finds) the lab's image.
pub(crate) async fn prepare(lab: &str, postgres_version: u32) -> Result<Prepared, EngineError> {
    let engine = Engine::connect().await?;
    let image = engine.build_postgres_image(postgres_version).await?.reference;
    Ok(Prepared {
        engine,
        image,
        lab: lab.into(),
    })
}

/// Creates the node's container (not started) and its monitor.
pub(crate) async fn create(
    prepared: &Prepared,
    spec: &NodeSpec,
    events: mpsc::Sender<Event>,
) -> anyhow::Result<Node> {
    let hba = write_hba(spec)?;
    let args = vec![
        "-D".into(),
        spec.data_dir.display().to_string(),
        "-c".into(),
        "listen_addresses=*".into(),
        "-c".into(),
        format!("hba_file={}", hba.display()),
    ];
    let node = HostDirNode {
        lab: prepared.lab.clone(),
        node: spec.name.clone(),
        image: prepared.image.clone(),
        port: spec.port,
        dirs: vec![spec.data_dir.clone(), spec.socket_dir.clone()],
        args,
    };
    let container = prepared.engine.create_host_dir_postgres(&node).await?;
    let (status, _) = watch::channel(initial_status(&spec.name));
    let node = DockerNode {
        spec: spec.clone(),
        container,
        lab: prepared.lab.clone(),
        engine: Arc::new(prepared.engine.clone()),
        status: Arc::new(status),
        wanted: Arc::new(AtomicBool::new(false)),
    };
    tokio::spawn(monitor(node.clone(), events));
    Ok(Node::Docker(node))
}

/// The native pg_hba.conf plus the lab network (`samenet`): in a container,
/// the host's connections arrive from the network's gateway, a subscriber's
/// from its own container. Passwords (scram) as natively.
fn write_hba(spec: &NodeSpec) -> anyhow::Result<std::path::PathBuf> {
    let path = spec.data_dir.join("pg_hba.docker.conf");
    let text = "# Written by prodhome for the docker backend.\n\
                local all postgres peer map=prodhome\n\
                host all all 127.0.0.1/32 scram-sha-256\n\
                host all all samenet scram-sha-256\n\
                host replication all samenet scram-sha-256\n";
    std::fs::write(&path, text)?;
    let owner = std::fs::metadata(&spec.data_dir)?;
    std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))?;
    Ok(path)
}

impl DockerNode {
    pub(crate) async fn start(&self) {
        self.wanted.store(true, Ordering::SeqCst);
        if let Err(e) = self.engine.start(&self.container, self.spec.port).await {
            self.status.send_modify(|s| {
                s.state = UnitState::Failed;
                s.last_probe_error = Some(e.to_string());
                s.since_ns = model::now_ns();
            });
        }
    }

    pub(crate) async fn stop(&self) {
        self.wanted.store(false, Ordering::SeqCst);
        let _ = self.engine.stop(&self.container, STOP_TIMEOUT).await;
        self.status.send_modify(|s| {
            s.state = UnitState::Stopped;
            s.pid = None;
            s.healthy = false;
            s.since_ns = model::now_ns();
        });
    }

    pub(crate) async fn restart(&self) {
        self.stop().await;
        self.start().await;
    }

    /// The engine acts on the whole container: SIGKILL to its postmaster
    /// (the engine then restarts it), the cgroup freezer for a pause.
    pub(crate) fn signal(&self, signal: NodeSignal) -> Result<(), NotRunning> {
        self.status.borrow().pid.ok_or(NotRunning)?;
        let (engine, name) = (self.engine.clone(), self.container.clone());
        tokio::spawn(async move {
            let _ = match signal {
                NodeSignal::Kill => engine.kill(&name, "SIGKILL").await,
                NodeSignal::Pause => engine.pause(&name).await,
                NodeSignal::Resume => engine.unpause(&name).await,
            };
        });
        Ok(())
    }

    /// Disconnects the container from the lab network (the engine's
    /// partition): peers and the host's published port lose it; it runs on.
    pub(crate) async fn isolate(&self) -> Result<(), String> {
        self.engine
            .partition(&self.lab, &self.spec.name)
            .await
            .map_err(|e| e.to_string())
    }

    /// Connects it again, under its node name.
    pub(crate) async fn rejoin(&self) -> Result<(), String> {
        self.engine
            .reconnect(&self.lab, &self.spec.name)
            .await
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn wait_for(&self, condition: Condition, timeout: Duration) -> Result<(), UnitStatus> {
        wait_for_status(&self.status, condition, timeout).await
    }

    pub(crate) fn status(&self) -> UnitStatus {
        self.status.borrow().clone()
    }

    /// Hands the container's stats to the store at `interval` until
    /// aborted: the newest engine sample (about one a second) each tick, so
    /// a faster interval repeats nothing and a slower one drops the rest.
    /// A stream that ends (the container stopped or was killed) is opened
    /// again after a wait, so the series resumes with the restarted server.
    pub(crate) async fn sample_stats(self, lab: String, interval: Duration, points: PointSender) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let mut stream = std::pin::pin!(self.engine.stats(&lab, &self.spec.name));
            let mut newest: Option<model::Point> = None;
            loop {
                tokio::select! {
                    item = stream.next() => match item {
                        Some(Ok(point)) => newest = Some(point),
                        // Gone or refused: wait, then ask again.
                        Some(Err(_)) | None => break,
                    },
                    _ = tick.tick() => {
                        if let Some(point) = newest.take() {
                            points.send(vec![point]);
                        }
                    }
                }
            }
            tokio::time::sleep(interval.max(BACKOFF)).await;
        }
    }

    /// A container reaches another by its container name on the lab network,
    /// at the port it listens on (a lab runs all its nodes on one backend).
    /// A replication link goes through the lab's link proxy instead (see
    /// [`start_link_proxy`]); this is the direct path, for a path without one.
    pub(crate) fn reach(&self, other: &Node) -> PeerAddr {
        let host = match other {
            Node::Docker(d) => d.container.clone(),
            Node::Native(_) | Node::External(_) => other.name().to_owned(),
        };
        PeerAddr {
            host,
            port: other.spec().port,
        }
    }
}

/// Follows the container: state and pid from the engine, readiness from a
/// real query, events on every change the supervisor would report.
async fn monitor(node: DockerNode, events: mpsc::Sender<Event>) {
    let mut restarts = 0;
    loop {
        tokio::time::sleep(TICK).await;
        let Ok(state) = node.engine.inspect(&node.container).await else {
            continue;
        };
        let ready = state.running
            && !state.paused
            && tokio::time::timeout(Duration::from_secs(2), pg::probe(&node.spec))
                .await
                .is_ok_and(|r| r.is_ok());
        let before = node.status();
        let pid = (state.running && state.pid > 0).then_some(state.pid as u32);
        let next = match (state.running, ready) {
            (true, true) => UnitState::Ready,
            (true, false) if before.ready_once && before.state == UnitState::Ready => UnitState::Unready,
            (true, false) if before.state == UnitState::Unready => UnitState::Unready,
            (true, false) => UnitState::Starting,
            (false, _) if node.wanted.load(Ordering::SeqCst) => UnitState::Backoff,
            (false, _) => UnitState::Stopped,
        };
        let name = &node.spec.name;
        let mut out = Vec::new();
        if pid.is_some() && before.pid != pid {
            out.push(EventKind::Started {
                pid: pid.unwrap_or(0),
            });
        }
        if before.pid.is_some() && pid.is_none() {
            let exit = exit_of(state.exit_code);
            out.push(EventKind::Exited {
                exit,
                expected: !node.wanted.load(Ordering::SeqCst),
            });
        }
        // The engine does not restart a container it was told to kill: the
        // backend does, as the supervisor restarts a crashed server.
        let crashed = before.pid.is_some() && pid.is_none() && node.wanted.load(Ordering::SeqCst);
        if crashed && restarts < MAX_RESTARTS {
            restarts += 1;
            out.push(EventKind::Restarting {
                attempt: restarts,
                after_ms: BACKOFF.as_millis() as u64,
            });
        } else if crashed {
            out.push(EventKind::GaveUp { restarts });
        }
        if next == UnitState::Ready && before.state != UnitState::Ready {
            out.push(EventKind::Ready);
        }
        if next == UnitState::Unready && before.state == UnitState::Ready {
            out.push(EventKind::NotReady);
        }
        if next != before.state || pid != before.pid || restarts != before.restarts {
            node.status.send_modify(|s| {
                if next != s.state {
                    s.since_ns = model::now_ns();
                }
                s.state = next;
                s.pid = pid;
                s.restarts = restarts;
                s.healthy = next == UnitState::Ready;
                s.ready_once |= next == UnitState::Ready;
                if pid.is_none() && before.pid.is_some() {
                    s.last_exit = Some(exit_of(state.exit_code));
                }
            });
        }
        for kind in out {
            let _ = events.send(Event::now(name.clone(), kind)).await;
        }
        if crashed && restarts < MAX_RESTARTS {
            tokio::time::sleep(BACKOFF).await;
            if node.wanted.load(Ordering::SeqCst) {
                node.start().await;
            }
        }
    }
}

/// The engine's exit code as an [`Exit`]: 128+N is signal N, as the shell says.
fn exit_of(code: i64) -> Exit {
    if code > 128 && code < 128 + 65 {
        Exit {
            code: None,
            signal: Some((code - 128) as i32),
        }
    } else {
        Exit {
            code: Some(code as i32),
            signal: None,
        }
    }
}

/// How long the link proxy's control endpoint may take to answer.
const LINK_PROXY_READY: Duration = Duration::from_secs(30);

/// Starts the lab's link proxy container carrying `links` and waits until
/// its control endpoint answers. Its token is new on every start, written
/// 0600 for the account the proxy runs as and mounted read-only; the
/// prodhome executable is this one, mounted read-only. A proxy that does not
/// answer is removed, and the error ends with its log.
pub(crate) async fn start_link_proxy(
    prepared: &Prepared,
    state: &crate::layout::StateDir,
    account: &pg::Account,
    seed: u64,
    plan: crate::links::LinkProxyPlan,
    events: mpsc::Sender<Event>,
) -> anyhow::Result<(LinkProxy, Vec<RemoteLink>)> {
    let links = plan.links;
    use anyhow::Context as _;
    let token = model::Secret::generate(48).context("reading random bytes for the link proxy's token")?;
    let token_file = state.root().join("link-proxy.token");
    crate::layout::write_atomic(&token_file, token.expose().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", token_file.display()))?;
    account.own(&token_file)?;
    let mut args = vec![
        "link-serve".to_owned(),
        "--control".into(),
        engine::LINK_PROXY_CONTROL_PORT.to_string(),
        "--token-file".into(),
        engine::LINK_PROXY_TOKEN.into(),
        "--seed".into(),
        seed.to_string(),
    ];
    for link in &links {
        args.extend(["--link".to_owned(), link.to_arg()]);
    }
    let spec = engine::LinkProxySpec {
        lab: prepared.lab.clone(),
        image: prepared.image.clone(),
        exe: std::env::current_exe().context("finding the prodhome executable for the link proxy")?,
        token_file: token_file.clone(),
        user: format!("{}:{}", account.uid, account.gid),
        args,
        control_port: plan.control_port,
    };
    let engine = &prepared.engine;
    engine.start_link_proxy(&spec).await?;
    let container = engine::link_proxy_name(&prepared.lab);
    let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, plan.control_port));
    let client = proxy::control::ControlClient::new(addr, token);
    if let Err(e) = wait_answers(&client).await {
        let log = engine.log_tail(&container, 20).await;
        let _ = engine.remove(&container).await;
        let _ = std::fs::remove_file(&token_file);
        anyhow::bail!("the link proxy container {container} did not answer: {e}. Its log:\n{log}");
    }
    let remote = links
        .into_iter()
        .map(|l| RemoteLink {
            name: l.name,
            client: client.clone(),
            host: container.clone(),
            port: l.port,
        })
        .collect();
    let engine = Arc::new(engine.clone());
    let (restarted, restarts) = watch::channel(0);
    let watcher = tokio::spawn(watch_link_proxy(
        engine.clone(),
        container.clone(),
        client,
        restarted,
        events,
    ));
    let proxy = LinkProxy {
        engine,
        container,
        token_file,
        watcher,
        restarts,
    };
    Ok((proxy, remote))
}

/// Starts the link proxy again whenever it is found not running (the
/// engine leaves a container it was told to kill stopped), with an event
/// under its container's name each time; until aborted. Link faults it
/// carried are gone with the process that held them: once the new one
/// answers, `restarted` counts it, and the daemon's faults put theirs back
/// (`Faults::reapply`).
async fn watch_link_proxy(
    engine: Arc<Engine>,
    container: String,
    client: proxy::control::ControlClient,
    restarted: watch::Sender<u64>,
    events: mpsc::Sender<Event>,
) {
    let mut attempt = 0;
    loop {
        tokio::time::sleep(TICK).await;
        let Ok(state) = engine.inspect(&container).await else {
            continue;
        };
        if state.running {
            continue;
        }
        attempt += 1;
        let exit = exit_of(state.exit_code);
        let _ = events
            .send(Event::now(
                &container,
                EventKind::Exited {
                    exit,
                    expected: false,
                },
            ))
            .await;
        let _ = events
            .send(Event::now(
                &container,
                EventKind::Restarting { attempt, after_ms: 0 },
            ))
            .await;
        if engine.start(&container, 0).await.is_ok() && wait_answers(&client).await.is_ok() {
            restarted.send_modify(|n| *n += 1);
        }
    }
}

/// Polls the control endpoint until it lists its links, up to [`LINK_PROXY_READY`].
async fn wait_answers(client: &proxy::control::ControlClient) -> Result<(), proxy::control::ControlError> {
    let deadline = tokio::time::Instant::now() + LINK_PROXY_READY;
    loop {
        match client.links().await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
