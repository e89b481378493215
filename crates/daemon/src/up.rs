//! `prodhome up`: the daemon's life from lock to exit.
//!
//! lock → 1 prepare (binaries, account, secrets, leftover servers, ports,
//! clusters, configuration, links) → 2 serve the API → 3 start every node →
//! 4 wait until each answers a real query → 5 roles → 6 replication (then
//! the app services and the background stages) → 7 ready → 8 run until
//! Ctrl-C, SIGTERM or `POST /api/down` → 9 stop everything → exit. Each
//! phase is one function below (prepare in `up/prepare.rs`), in that
//! order. A failure at any step stops what was started; what was created
//! stays, whole, for the next `up` to reuse.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lab::{Plan, Tables};
use model::{Event, EventKind};
use pg::{ReplicationSpec, SubscriberSpec};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::backend;
use crate::eventlog::EventLog;
use crate::faults::{Faults, Subject};
use crate::humtables::Carried;
use crate::lablock::{lock, write_token};
use crate::layout::{StateDir, write_atomic};
use crate::links::{self, LinkHandle};
use crate::running::{Lab, LinkErrors};
use crate::{assemble, leftovers, routes, services, stages};

mod external;
mod prepare;
use crate::external::ExternalLab;
use prepare::{Prepared, Refill, Spares, prepare};

/// What `up` needs beyond the plan.
pub struct UpOptions {
    pub plan: Plan,
    pub state: StateDir,
    /// The template cluster cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Print events and progress on stderr (foreground `up`).
    pub echo: bool,
    /// How long nodes and subscriptions may take to get ready.
    pub ready_timeout: Duration,
    /// `prodhome controller`: the nodes are servers an engine runs, not
    /// started here (see [`ExternalLab`]).
    pub external: Option<ExternalLab>,
}

/// Runs the lab until asked to stop. Returns an error when it could not be
/// brought up (after stopping whatever it started).
pub async fn run(opts: UpOptions) -> Result<()> {
    opts.state
        .create(&opts.plan.name)
        .with_context(|| format!("creating the state directory {}", opts.state.root().display()))?;
    let _lock = lock(&opts.state).await?;
    let store = stages::start_store(&opts.plan, &opts.state)?;
    let (tap, tapped) = match opts.plan.alert {
        Some(_) => {
            let (tx, rx) = mpsc::channel(4096);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let (events, log) = EventLog::start_with_tap(opts.state.events(), opts.echo, Some(store.clone()), tap);
    let result = run_locked(&opts, events, store.clone(), tapped).await;
    log.flush().await;
    // With a sink's server down, a flush would wait through its retries.
    let _ = tokio::time::timeout(Duration::from_secs(10), store.flush()).await;
    let _ = std::fs::remove_file(opts.state.daemon_json());
    let _ = std::fs::remove_file(opts.state.api_token());
    result
}

/// Start-up as its phases, top to bottom. Everything a phase starts is
/// stopped by [`stop`] whichever phase fails after it.
async fn run_locked(
    opts: &UpOptions,
    events: mpsc::Sender<Event>,
    store: store::Store,
    tapped: Option<mpsc::Receiver<Event>>,
) -> Result<()> {
    let say = Say(opts.echo);
    let prepared = match &opts.external {
        Some(external) => external::prepare(&opts.plan, &opts.state, external, &events).await?,
        None => prepare(opts, &events, say).await?,
    };
    let listener = bind_api(&opts.plan, opts.external.as_ref()).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let (lab, recorder) = spawn_lab(opts, &prepared, api, store, &events)?;
    let alerting = spawn_alerts(&opts.plan, &lab, tapped, &events);
    let server = serve_api(&opts.plan, &lab, listener, &events).await?;
    let started = tokio::select! {
        r = bring_up(opts, &lab) => r,
        _ = stop_requested(&lab) => Err(anyhow!("interrupted while starting")),
    };
    let background = match started {
        Ok(up) => start_background(&opts.plan, &lab, &events, up).await.map(Some),
        Err(e) => Err(e),
    };
    let started = background.as_ref().map(|_| ()).map_err(|e| anyhow!("{e:#}"));
    let mut spares = None;
    match &started {
        Ok(()) => {
            ready(&opts.plan, &lab, &events, say).await;
            spares = prepared.spares.as_ref().map(Spares::refill);
            stop_requested(&lab).await;
        }
        Err(e) => {
            lab.phase.send_replace(("failed".into(), Some(format!("{e:#}"))));
        }
    }
    let running = Running {
        background: background.ok().flatten(),
        recorder,
        alerting,
        spares,
    };
    stop(&opts.plan, &lab, running, &events, say).await;
    server.abort();
    started
}

/// Progress on stderr for a foreground `up`.
#[derive(Clone, Copy)]
struct Say(bool);

impl Say {
    fn say(self, msg: String) {
        if self.0 {
            eprintln!("prodhome: {msg}");
        }
    }
}

/// The control API's socket, on 127.0.0.1 (`api_port`, or any free port);
/// the controller's where it was told (inside its container).
async fn bind_api(plan: &Plan, external: Option<&ExternalLab>) -> Result<tokio::net::TcpListener> {
    if let Some(external) = external {
        return tokio::net::TcpListener::bind(external.listen)
            .await
            .with_context(|| format!("binding the control API to {} (PRODHOME_LISTEN)", external.listen));
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, plan.api_port.unwrap_or(0)));
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| match plan.api_port {
            Some(p) => format!("api_port {p} is already in use; choose another or remove api_port"),
            None => "binding the control API".into(),
        })
}

/// The running lab: every node handed to its backend and every service to
/// the supervisor (none started yet), the fault controller over them, and
/// the recorder of the services' pids.
fn spawn_lab(
    opts: &UpOptions,
    prepared: &Prepared,
    api: String,
    store: store::Store,
    events: &mpsc::Sender<Event>,
) -> Result<(Arc<Lab>, JoinHandle<()>)> {
    let UpOptions { plan, state, .. } = opts;
    let nodes = prepared.nodes.clone();
    let refs = assemble::Refs {
        nodes: &prepared.specs,
        links: &prepared.links,
        secrets: &prepared.named_secrets,
        lab_network: None,
    };
    let taps = stages::service_log_taps(plan, &store);
    let services = services::spawn(plan, state, &refs, &prepared.images, &taps, events)?;
    let subjects = nodes
        .iter()
        .map(|n| (n.name().to_string(), Subject::Node(n.clone())))
        .chain(
            services
                .iter()
                .map(|s| (s.name().to_string(), Subject::Service(s.clone()))),
        )
        .collect();
    let faults = Faults::new(subjects, prepared.links.clone(), events.clone());
    let programs = services::leftover_keys(&services, plan);
    let units = services.iter().map(|s| s.unit().clone()).collect();
    let recorder = tokio::spawn(leftovers::record(state.clone(), units, programs));
    let (phase, _) = watch::channel(("starting".to_string(), None));
    let admin = nodes
        .iter()
        .map(|n| (n.name().to_string(), tokio::sync::Mutex::new(None)))
        .collect();
    let lab = Arc::new(Lab {
        name: plan.name.clone(),
        api,
        phase,
        nodes,
        services,
        replications: assemble::replications(plan),
        state: state.clone(),
        links: prepared.links.clone(),
        faults,
        store,
        shutdown: Notify::new(),
        link_errors: LinkErrors::default(),
        events: events.clone(),
        admin,
    });
    Ok((lab, recorder))
}

/// The alerts, when the lab has `[alert]`: fed from the event log's tap.
fn spawn_alerts(
    plan: &Plan,
    lab: &Arc<Lab>,
    tapped: Option<mpsc::Receiver<Event>>,
    events: &mpsc::Sender<Event>,
) -> Option<JoinHandle<()>> {
    let (Some(alert), Some(rx)) = (&plan.alert, tapped) else {
        return None;
    };
    let opts = assemble::alert_options(alert, plan);
    Some(tokio::spawn(stages::run_alerts(
        opts,
        lab.clone(),
        rx,
        events.clone(),
    )))
}

/// Phase 2, serve the API: a fresh token, the control API and the dashboard
/// on the bound socket, `daemon.json` for the CLI, and the `starting` event.
async fn serve_api(
    plan: &Plan,
    lab: &Arc<Lab>,
    listener: tokio::net::TcpListener,
    events: &mpsc::Sender<Event>,
) -> Result<JoinHandle<std::io::Result<()>>> {
    let token = write_token(&lab.state)?;
    let server = tokio::spawn({
        // The dashboard and its data routes beside the control API.
        let router = routes::router(lab.clone(), token).merge(web::router(lab.state.metrics_db()));
        async move { axum::serve(listener, router).await }
    });
    let info = api::DaemonInfo {
        pid: std::process::id(),
        api: lab.api.clone(),
        lab: plan.name.clone(),
        fingerprint: plan.fingerprint.clone(),
    };
    write_atomic(
        &lab.state.daemon_json(),
        serde_json::to_string(&info)?.as_bytes(),
        0o644,
    )?;
    lab_event(events, &plan.name, "starting").await;
    Ok(server)
}

async fn lab_event(events: &mpsc::Sender<Event>, lab: &str, phase: &str) {
    let _ = events
        .send(Event::now(lab, EventKind::Lab { phase: phase.into() }))
        .await;
}

/// What [`bring_up`] leaves for the stages after it.
struct BroughtUp {
    /// The tables each replication's subscriptions carry, ready.
    carried: Carried,
    /// The admin session to each node the lab was set up over.
    clients: BTreeMap<String, tokio_postgres::Client>,
}

/// Phases 3 to 6: start every node, wait until each is ready, roles,
/// replication; then the app services.
async fn bring_up(opts: &UpOptions, lab: &Lab) -> Result<BroughtUp> {
    let (plan, ready_timeout) = (&opts.plan, opts.ready_timeout);
    let made_elsewhere = opts.external.as_ref().is_some_and(|e| e.replication_by_engine);
    for node in &lab.nodes {
        node.start().await;
    }
    wait_ready(lab, ready_timeout).await?;
    let clients = roles(lab).await?;
    let mut carried = Carried::new();
    for repl in &plan.replications {
        let tables = replication(repl, lab, &clients, ready_timeout, made_elsewhere).await?;
        carried.insert(repl.name.clone(), tables);
    }
    services::start_all(&plan.services, &lab.nodes, &lab.services, ready_timeout).await?;
    Ok(BroughtUp { carried, clients })
}

/// How long `ready` waits for the subscriptions' apply workers to connect;
/// past it (a link a `[[chaos]]` scenario cut at once), `up -d`'s own wait
/// for streaming links goes on.
const STREAMING_WITHIN: Duration = Duration::from_secs(2);

/// The background stages, started while the apply workers of the new
/// subscriptions connect (they do just after the subscriptions are made),
/// which is waited for beside them: so the lab is `ready` with its links
/// streaming, the status `up -d` waits for. Then the admin sessions go to
/// the status builder, which need not open its own.
async fn start_background(
    plan: &Plan,
    lab: &Arc<Lab>,
    events: &mpsc::Sender<Event>,
    up: BroughtUp,
) -> Result<stages::Background> {
    let streaming = async {
        let deadline = tokio::time::Instant::now() + STREAMING_WITHIN;
        for repl in &plan.replications {
            let slots: Vec<String> = repl
                .subscribers
                .iter()
                .map(|sub| pg::subscription_name(&repl.name, sub))
                .collect();
            let Some(publisher) = up.clients.get(&repl.publisher) else {
                continue;
            };
            // Each slot is in use once its subscription's apply worker streams.
            while tokio::time::Instant::now() < deadline
                && pg::check_slots(publisher, &slots)
                    .await
                    .is_ok_and(|checks| checks.iter().any(|slot| !slot.active))
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let stages = stages::start(plan, lab, events.clone(), &up.carried);
    let (background, ()) = futures_util::future::join(stages, streaming).await;
    for (node, client) in up.clients {
        crate::status::give_back(lab, &node, Some(client)).await;
    }
    background
}

/// Phase 4, wait ready: every node answers a real query, or every one that
/// does not is named with why.
async fn wait_ready(lab: &Lab, ready_timeout: Duration) -> Result<()> {
    let waits = lab.nodes.iter().map(|node| async move {
        node.wait_ready(ready_timeout)
            .await
            .map_err(|status| node_not_ready(node.name(), &status, &lab.state.node_log(node.name())))
    });
    let errors: Vec<String> = futures_util::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(|r| r.err())
        .map(|e| e.to_string())
        .collect();
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

/// Phase 5, roles: each node's roles and database; the admin connections
/// replication is set up over, by node.
async fn roles(lab: &Lab) -> Result<BTreeMap<String, tokio_postgres::Client>> {
    // Every node at once: each is a login and one batch, mostly waiting on
    // its own server.
    let each = lab.nodes.iter().map(|node| async move {
        let spec = node.spec();
        let client = pg::admin(spec).await?;
        pg::bootstrap(&client, &spec.name, &spec.credentials).await?;
        anyhow::Ok((spec.name.clone(), client))
    });
    futures_util::future::try_join_all(each)
        .await
        .map(BTreeMap::from_iter)
}

/// Phase 6, replication: one replication set up and its initial sync
/// waited for; the tables its subscriptions carry. Each subscriber reaches
/// the publisher where its backend says (through the link's proxy when
/// there is one). `made_elsewhere`: the engine (CloudNativePG) makes the
/// publication and subscriptions.
async fn replication(
    repl: &lab::ReplicationPlan,
    lab: &Lab,
    clients: &BTreeMap<String, tokio_postgres::Client>,
    ready_timeout: Duration,
    made_elsewhere: bool,
) -> Result<Vec<String>> {
    let node = |name: &str| lab.node(name).expect("checked by lab");
    let publisher = node(&repl.publisher);
    let subscribers = repl
        .subscribers
        .iter()
        .map(|name| {
            let link = lab.links.get(&links::replication_link(&repl.publisher, name));
            let to = match link.and_then(LinkHandle::lab_network_addr) {
                // A docker lab's link proxy, by its name on the lab network.
                Some((host, port)) => backend::PeerAddr {
                    host: host.to_owned(),
                    port,
                },
                None => node(name).reach(publisher, link.and_then(LinkHandle::local_port)),
            };
            SubscriberSpec {
                node: node(name).spec(),
                client: &clients[name],
                publisher_host: to.host,
                publisher_port: to.port,
                log: lab.state.node_log(name),
            }
        })
        .collect();
    let tables = match &repl.tables {
        Tables::All => None,
        Tables::List(list) => Some(list.as_slice()),
    };
    let spec = ReplicationSpec {
        name: &repl.name,
        publisher: publisher.spec(),
        subscribers,
        schema: repl.schema.as_ref().map(|s| pg::SchemaSpec {
            path: &s.path,
            sql: &s.sql,
        }),
        tables,
        made_elsewhere,
    };
    Ok(pg::setup_replication(&spec, &clients[&repl.publisher], ready_timeout).await?)
}

/// Phase 7, ready: the phase, its event, and where everything is.
async fn ready(plan: &Plan, lab: &Lab, events: &mpsc::Sender<Event>, say: Say) {
    lab.phase.send_replace(("ready".into(), None));
    lab_event(events, &plan.name, "ready").await;
    say.say(format!(
        "lab {} is ready; dashboard at {}/ (control API and /metrics on the same port)",
        plan.name, lab.api
    ));
    for node in &lab.nodes {
        let at = node.host_addr();
        let pid = match node.status().pid {
            Some(pid) => format!("pid {pid}"),
            None => "run by its engine".into(),
        };
        say.say(format!(
            "  {:<14} {:<22} {pid}",
            node.name(),
            format!("{}:{}", at.host, at.port)
        ));
    }
    say.say("Ctrl-C stops the lab; `prodhome status` shows it from another terminal".into());
}

/// What runs beside the nodes, for [`stop`].
struct Running {
    background: Option<stages::Background>,
    recorder: JoinHandle<()>,
    alerting: Option<JoinHandle<()>>,
    spares: Option<Refill>,
}

/// Phase 9, stop: the background stages, the apps before the databases
/// they use, every fault healed (no server left paused, no link cut), then
/// the nodes; meanwhile the spare copy under way, if any, ends.
async fn stop(plan: &Plan, lab: &Lab, mut running: Running, events: &mpsc::Sender<Event>, say: Say) {
    lab.phase.send_replace(("stopping".into(), None));
    say.say(format!("stopping lab {}", plan.name));
    let spares = running.spares.take();
    let spares = async {
        if let Some(refill) = spares {
            refill.stop().await;
        }
    };
    futures_util::future::join(spares, stop_lab(lab, running)).await;
    lab_event(events, &plan.name, "stopped").await;
}

async fn stop_lab(lab: &Lab, running: Running) {
    if let Some(background) = running.background {
        background.stop().await;
    }
    futures_util::future::join_all(lab.services.iter().map(|unit| unit.stop())).await;
    running.recorder.abort();
    if let Some(task) = running.alerting {
        task.abort();
    }
    let _ = std::fs::remove_file(lab.state.root().join("services.pids"));
    lab.faults.heal_all().await;
    lab.links.shutdown().await;
    futures_util::future::join_all(lab.nodes.iter().map(|node| node.stop())).await;
}

/// Why a node did not get ready: on a failed first start, the server's own
/// FATAL line first (a setting it rejects, a library that is not there).
fn node_not_ready(name: &str, status: &supervisor::UnitStatus, log: &std::path::Path) -> anyhow::Error {
    let exit = status
        .last_exit
        .map(|e| e.to_string())
        .unwrap_or_else(|| "no exit".into());
    let end = format!("The end of its log ({}):\n{}", log.display(), tail(log, 12));
    if status.state == supervisor::UnitState::Failed && !status.ready_once {
        let cause = fatal_line(log).unwrap_or_else(|| "the server stopped".into());
        return anyhow!(
            "node {name} did not become ready: it failed on its first start: {cause} ({exit}). It was not restarted: it would fail \
             the same way again; fix the cause (a setting in the lab file?) and run `up` again. {end}"
        );
    }
    let exit = status
        .last_exit
        .map(|e| format!(", last exit: {e}"))
        .unwrap_or_default();
    anyhow!(
        "node {name} did not become ready (state {}{exit}). {end}",
        status.state.as_str()
    )
}

/// The last FATAL or PANIC message near the end of a server log, without
/// its timestamp and pid.
fn fatal_line(log: &std::path::Path) -> Option<String> {
    let end = tail(log, 40);
    end.lines().rev().find_map(|line| {
        let at = line.find("FATAL:").or_else(|| line.find("PANIC:"))?;
        Some(line[at..].split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

async fn stop_requested(lab: &Lab) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = lab.shutdown.notified() => {}
    }
}

/// The last `n` lines of a file, for error messages.
pub fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
