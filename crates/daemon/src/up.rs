//! `prodhome up`: the daemon's life from lock to exit.
//!
//! prepare (lock, binaries, account, secrets, ports, leftover servers,
//! clusters, configuration) → serve the API → start every node → wait until
//! each answers a real query → roles → replication → ready → wait for Ctrl-C,
//! SIGTERM or `POST /api/down` → stop everything → exit. A failure at any
//! step stops what was started; what was created stays, whole, for the next
//! `up` to reuse.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lab::{Plan, Tables};
use model::{Event, EventKind, Secret};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;
use pg::{NodeSpec, ReplicationSpec, SubscriberSpec};
use supervisor::UnitHandle;
use tokio::sync::{Notify, mpsc, watch};

use crate::eventlog::EventLog;
use crate::faults::Faults;
use crate::layout::{LockHolder, StateDir, write_atomic};
use crate::links;
use crate::running::{Lab, LinkErrors, ReplicationInfo};
use crate::{assemble, leftovers, ports, routes, secrets, services, stages};

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

async fn run_locked(
    opts: &UpOptions,
    events: mpsc::Sender<Event>,
    store: store::Store,
    tapped: Option<mpsc::Receiver<Event>>,
) -> Result<()> {
    let UpOptions {
        plan,
        state,
        cache_dir,
        echo,
        ready_timeout,
    } = opts;
    let (echo, ready_timeout) = (*echo, *ready_timeout);
    let say = |msg: String| {
        if echo {
            eprintln!("prodhome: {msg}");
        }
    };
    let bins = pg::find_binaries(plan.postgres_version).map_err(|e| match &plan.postgres_version_at {
        Some(at) => anyhow!("{at}: {e}"),
        None => anyhow!("{e}"),
    })?;
    let account = pg::Account::resolve(plan.run_as.as_deref())?;
    pg::check_reachable(&account, state.root())?;
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    let creds = secrets::load_or_generate(state, &names)?;
    let named_secrets = secrets::named_or_generate(state, &plan.secrets)?;

    // Servers left running by a daemon that was killed: shut them down
    // cleanly (no data is lost by a fast shutdown) so we supervise them.
    for node in &plan.nodes {
        if let Some(pid) = pg::postmaster_pid(&state.data_dir(&node.name)) {
            say(format!(
                "{}: found running from an earlier daemon (pid {pid}); restarting it under supervision",
                node.name
            ));
            let _ = events
                .send(Event::now(&node.name, EventKind::Adopted { pid }))
                .await;
            supervisor::stop_pid(pid, Signal::SIGINT, Duration::from_secs(60)).await;
        }
    }
    for name in leftovers::stop_leftovers(state).await {
        say(format!(
            "{name}: found running from an earlier daemon; stopped it to start it under supervision"
        ));
    }
    let ports = ports::resolve(plan, state, &links::names(plan))?;
    let specs = assemble::node_specs(plan, state, &ports, &creds)?;
    for spec in &specs {
        for dir in [state.node_dir(&spec.name), spec.socket_dir.clone()] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            account.own(&dir)?;
        }
    }
    let created = pg::ensure_clusters(&bins, &account, &specs, cache_dir.as_deref()).await?;
    if !created.is_empty() {
        say(format!("created clusters for {}", created.join(", ")));
    }
    for spec in &specs {
        pg::write_config(spec, &account)?;
    }
    let links = links::start(plan, &ports).await?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        plan.api_port.unwrap_or(0),
    )))
    .await
    .with_context(|| match plan.api_port {
        Some(p) => format!("api_port {p} is already in use; choose another or remove api_port"),
        None => "binding the control API".into(),
    })?;
    let api = format!("http://{}", listener.local_addr()?);
    let nodes: Vec<(NodeSpec, UnitHandle)> = specs
        .iter()
        .map(|spec| {
            let unit = assemble::node_unit(&bins, &account, state, spec);
            (spec.clone(), supervisor::spawn_unit(unit, events.clone()))
        })
        .collect();
    let refs = services::Refs {
        nodes: &specs,
        links: &links,
        secrets: &named_secrets,
    };
    let mut service_units = Vec::new();
    for service in &plan.services {
        let spec = services::unit(service, state, &refs)?;
        service_units.push(supervisor::spawn_unit(spec, events.clone()));
    }
    let units: BTreeMap<String, UnitHandle> = nodes
        .iter()
        .map(|(spec, unit)| (spec.name.clone(), unit.clone()))
        .chain(service_units.iter().map(|u| (u.name().to_string(), u.clone())))
        .collect();
    let faults = Faults::new(units.clone(), links.clone(), events.clone());
    let programs = plan.services.iter().map(|s| s.command[0].clone()).collect();
    let recorder = tokio::spawn(leftovers::record(state.clone(), service_units.clone(), programs));
    let replications = plan
        .replications
        .iter()
        .map(|r| ReplicationInfo {
            name: r.name.clone(),
            publisher: r.publisher.clone(),
            subscribers: r.subscribers.clone(),
        })
        .collect();
    let (phase, _) = watch::channel(("starting".to_string(), None));
    let lab = Arc::new(Lab {
        name: plan.name.clone(),
        api: api.clone(),
        phase,
        nodes,
        services: service_units,
        units,
        replications,
        state: state.clone(),
        links,
        faults,
        store,
        shutdown: Notify::new(),
        link_errors: LinkErrors::default(),
        events: events.clone(),
    });
    let alerting = match (&plan.alert, tapped) {
        (Some(alert), Some(rx)) => {
            let task = stages::run_alerts(
                alert.clone(),
                plan.name.clone(),
                plan.dir.clone(),
                lab.clone(),
                rx,
                events.clone(),
            );
            Some(tokio::spawn(task))
        }
        _ => None,
    };
    let token = write_token(state)?;
    let server = tokio::spawn({
        // The dashboard and its data routes beside the control API.
        let router = routes::router(lab.clone(), token).merge(web::router(state.metrics_db()));
        async move { axum::serve(listener, router).await }
    });
    let info = api::DaemonInfo {
        pid: std::process::id(),
        api: api.clone(),
        lab: plan.name.clone(),
        fingerprint: plan.fingerprint.clone(),
    };
    write_atomic(
        &state.daemon_json(),
        serde_json::to_string(&info)?.as_bytes(),
        0o644,
    )?;
    let _ = events
        .send(Event::now(
            &plan.name,
            EventKind::Lab {
                phase: "starting".into(),
            },
        ))
        .await;

    let started = tokio::select! {
        r = bring_up(plan, &lab, ready_timeout) => r,
        _ = stop_requested(&lab) => Err(anyhow!("interrupted while starting")),
    };
    let background = match started {
        Ok(()) => stages::start(plan, &lab, events.clone()).await.map(Some),
        Err(e) => Err(e),
    };
    let started = background.as_ref().map(|_| ()).map_err(|e| anyhow!("{e:#}"));
    match &started {
        Ok(()) => {
            lab.phase.send_replace(("ready".into(), None));
            let _ = events
                .send(Event::now(
                    &plan.name,
                    EventKind::Lab {
                        phase: "ready".into(),
                    },
                ))
                .await;
            say(format!(
                "lab {} is ready; dashboard at {api}/ (control API and /metrics on the same port)",
                plan.name
            ));
            for (spec, unit) in &lab.nodes {
                say(format!(
                    "  {:<14} 127.0.0.1:{:<6} pid {}",
                    spec.name,
                    spec.port,
                    unit.status().pid.unwrap_or(0)
                ));
            }
            say("Ctrl-C stops the lab; `prodhome status` shows it from another terminal".into());
            stop_requested(&lab).await;
        }
        Err(e) => {
            lab.phase.send_replace(("failed".into(), Some(format!("{e:#}"))));
        }
    }
    lab.phase.send_replace(("stopping".into(), None));
    say(format!("stopping lab {}", plan.name));
    if let Ok(Some(background)) = background {
        background.stop().await;
    }
    // Apps before the databases they use.
    futures_util::future::join_all(lab.services.iter().map(|unit| unit.stop())).await;
    recorder.abort();
    if let Some(task) = alerting {
        task.abort();
    }
    let _ = std::fs::remove_file(state.root().join("services.pids"));
    // No server is left paused and no link cut by a fault.
    lab.faults.heal_all().await;
    futures_util::future::join_all(lab.nodes.iter().map(|(_, unit)| unit.stop())).await;
    let _ = events
        .send(Event::now(
            &plan.name,
            EventKind::Lab {
                phase: "stopped".into(),
            },
        ))
        .await;
    server.abort();
    started
}

/// Starts every node, waits until each is ready, then roles and replication.
async fn bring_up(plan: &Plan, lab: &Lab, ready_timeout: Duration) -> Result<()> {
    for (_, unit) in &lab.nodes {
        unit.start().await;
    }
    let waits = lab.nodes.iter().map(|(spec, unit)| async move {
        unit.wait_ready(ready_timeout)
            .await
            .map_err(|status| node_not_ready(&spec.name, &status, &lab.state.node_log(&spec.name)))
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
    let mut clients = std::collections::BTreeMap::new();
    for (spec, _) in &lab.nodes {
        let client = pg::admin(spec).await?;
        pg::bootstrap(&client, &spec.name, &spec.credentials).await?;
        clients.insert(spec.name.clone(), client);
    }
    for repl in &plan.replications {
        let node = |name: &str| {
            lab.nodes
                .iter()
                .map(|(s, _)| s)
                .find(|s| s.name == name)
                .expect("checked by lab")
        };
        let publisher = node(&repl.publisher);
        let subscribers = repl
            .subscribers
            .iter()
            .map(|name| {
                let link = lab.links.get(&links::replication_link(&repl.publisher, name));
                SubscriberSpec {
                    node: node(name),
                    client: &clients[name],
                    publisher_port: link.map(|l| l.addr().port()).unwrap_or(publisher.port),
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
            publisher,
            subscribers,
            schema: repl.schema.as_ref().map(|s| pg::SchemaSpec {
                path: &s.path,
                sql: &s.sql,
            }),
            tables,
        };
        pg::setup_replication(&spec, &clients[&repl.publisher], ready_timeout).await?;
    }
    services::start_all(&plan.services, &lab.units, ready_timeout).await?;
    Ok(())
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

/// How long a new daemon waits for the lock of one that is exiting: a
/// killed daemon lets go of it once its last thread is gone.
const DYING_HOLDER_WAIT: Duration = Duration::from_secs(30);

/// Takes the lab's lock: at once when it is free, after a bounded wait when
/// its holder is exiting (`kill -9`, then `up` at once), never while a live
/// daemon holds it.
async fn lock(state: &StateDir) -> Result<Flock<std::fs::File>> {
    let path = state.lock_file();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = tokio::time::Instant::now() + DYING_HOLDER_WAIT;
    loop {
        file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, _)) => file,
        };
        match state.lock_holder() {
            LockHolder::Alive(pid) => {
                let who = match state.running_daemon() {
                    Some(d) => format!(" (pid {}, api {})", d.pid, d.api),
                    None if pid != 0 => format!(" (pid {pid}, still starting)"),
                    None => String::new(),
                };
                bail!(
                    "another prodhome daemon is already running this lab{who}; use `prodhome status`, or `prodhome down` to stop it"
                );
            }
            LockHolder::Dying(pid) if tokio::time::Instant::now() >= deadline => bail!(
                "{} is still locked by pid {pid}, a prodhome daemon that is exiting but not gone after {:?}; \
                 see `cat /proc/{pid}/status`, then run `prodhome up` again",
                path.display(),
                DYING_HOLDER_WAIT
            ),
            // Exiting, or just let go: try again in a moment.
            LockHolder::Dying(_) | LockHolder::Free => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A fresh token for the control API, in `api.token` (0600) before the API
/// answers: only the account that started the lab can read it, so only it
/// can change the lab. A new one on every start: a token read from an
/// earlier run is worth nothing.
fn write_token(state: &StateDir) -> Result<Secret> {
    let token = Secret::generate(48).context("reading random bytes for the control API's token")?;
    let path = state.api_token();
    write_atomic(&path, token.expose().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// The last `n` lines of a file, for error messages.
pub fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
