//! Phase 1 of `up`, prepare: everything made before the API is served — the
//! server binaries and account, secrets, servers an earlier daemon left
//! running, ports, clusters (from spares, the template or one initdb) and
//! their configuration, the proxy links, and each node handed to its
//! backend (none started yet).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use lab::Plan;
use model::{Event, EventKind, Secret};
use nix::sys::signal::Signal;
use pg::NodeSpec;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Say, UpOptions};
use crate::backend::{self, Node};
use crate::layout::StateDir;
use crate::links::{self, Links};
use crate::{assemble, leftovers, ports, secrets, services};

/// What preparation found and made: the server binaries and account, the
/// nodes' specs (clusters created, configuration written), the named
/// secrets, and the proxy links, listening.
pub(super) struct Prepared {
    pub(super) specs: Vec<NodeSpec>,
    /// Where the next lab's clusters are made ahead, when there is a cache.
    pub(super) spares: Option<Spares>,
    pub(super) named_secrets: BTreeMap<String, Secret>,
    pub(super) links: Links,
    /// The lab's nodes, each handed to its backend (none started yet).
    pub(super) nodes: Vec<Node>,
    /// The images of the services that run in containers.
    pub(super) images: services::Images,
}

/// Phase 1, prepare: binaries, account, secrets, servers left running by an
/// earlier daemon, ports, node directories, clusters, configuration, links.
pub(super) async fn prepare(opts: &UpOptions, events: &mpsc::Sender<Event>, say: Say) -> Result<Prepared> {
    let UpOptions { plan, state, .. } = opts;
    let bins = pg::find_binaries(plan.postgres_version).map_err(|e| match &plan.postgres_version_at {
        Some(at) => anyhow!("{at}: {e}"),
        None => anyhow!("{e}"),
    })?;
    let account = pg::Account::resolve(plan.run_as.as_deref())?;
    pg::check_reachable(&account, state.root())?;
    // Before anything is created: a missing image ends `up` here.
    let images = services::images(plan).await?;
    if plan.backend == lab::Backend::Docker || !images.is_empty() {
        crate::labname::claim(&plan.name, state.root())?;
    }
    for line in images.describe() {
        say.say(line);
    }
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    let creds = secrets::load_or_generate(state, &names)?;
    let named_secrets = secrets::named_or_generate(state, &plan.secrets)?;
    adopt_leftovers(plan, state, events, say).await;
    let ports = ports::resolve(plan, state, &assemble::kept_port_names(plan))?;
    let specs = assemble::node_specs(plan, state, &ports, &creds)?;
    create_clusters(opts, &bins, &account, &specs, say).await?;
    let mut links = links::start(assemble::link_options(plan, &ports)?).await?;
    let (nodes, docker) = spawn_nodes(plan, state, &bins, &account, &specs, events, say).await?;
    if let (Some(docker), Some(link_proxy)) = (docker, assemble::link_proxy(plan, &ports)?) {
        let (proxy, remote) = backend::docker::start_link_proxy(
            &docker,
            state,
            &account,
            plan.seed,
            link_proxy,
            events.clone(),
        )
        .await?;
        say.say(format!(
            "docker backend: replication links through {}",
            proxy.container
        ));
        links.add_remote(proxy, remote);
    }
    let spares = opts.cache_dir.clone().map(|cache| Spares {
        bins: bins.clone(),
        account: account.clone(),
        cache,
        state: state.root().to_path_buf(),
        want: specs.len(),
    });
    Ok(Prepared {
        specs,
        spares,
        named_secrets,
        links,
        nodes,
        images,
    })
}

/// The spare clusters the next `up` renames into place (see `pg::fill_spares`).
pub(super) struct Spares {
    bins: pg::Binaries,
    account: pg::Account,
    cache: PathBuf,
    state: PathBuf,
    want: usize,
}

impl Spares {
    /// Tops the spares up in the background, once the lab is ready (after a
    /// cold `up`, the template's initdb first): ~1 s of work that neither
    /// this `up` nor the next waits for.
    pub(super) fn refill(&self) -> Refill {
        let Spares {
            bins,
            account,
            cache,
            state,
            want,
        } = self;
        let (bins, account, cache, state, want) =
            (bins.clone(), account.clone(), cache.clone(), state.clone(), *want);
        let go_on = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn({
            let go_on = go_on.clone();
            async move {
                let go_on = move || go_on.load(Ordering::SeqCst);
                if let Err(e) = pg::fill_spares(&bins, &account, &cache, &state, want, &go_on).await {
                    tracing::warn!("making spare clusters in {}: {e}", cache.display());
                }
            }
        });
        Refill { go_on, task }
    }
}

/// The spares being made in the background.
pub(super) struct Refill {
    go_on: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Refill {
    /// Stops after the step under way (a copy of ~1,000 files, or the
    /// template's initdb): nothing half-made is left and no initdb outlives
    /// the daemon. Bounded: after [`REFILL_STOP`] the task is dropped (an
    /// initdb with it; a copy stuck on a dead disk stays on its thread).
    pub(super) async fn stop(self) {
        self.go_on.store(false, Ordering::SeqCst);
        let mut task = self.task;
        if tokio::time::timeout(REFILL_STOP, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// How long a stopping daemon waits for the spare copy under way.
const REFILL_STOP: Duration = Duration::from_secs(30);

/// Every node handed to the lab's backend: a supervisor unit natively; a
/// container (the image built first when needed) on Docker, with the
/// engine and image the link proxy is started from.
async fn spawn_nodes(
    plan: &Plan,
    state: &StateDir,
    bins: &pg::Binaries,
    account: &pg::Account,
    specs: &[NodeSpec],
    events: &mpsc::Sender<Event>,
    say: Say,
) -> Result<(Vec<Node>, Option<backend::docker::Prepared>)> {
    if plan.backend == lab::Backend::Native {
        let nodes = specs
            .iter()
            .map(|spec| {
                backend::native::spawn(
                    spec,
                    assemble::node_unit(bins, account, state, spec),
                    events.clone(),
                )
            })
            .collect();
        return Ok((nodes, None));
    }
    let prepared = backend::docker::prepare(&plan.name, plan.postgres_version).await?;
    say.say(format!("docker backend: image {}", prepared.image));
    // What this kernel lacks is said, not faked (delay stays in the proxy).
    for missing in prepared.engine.capabilities().unsupported() {
        say.say(format!("docker backend: {missing}"));
    }
    let mut nodes = Vec::new();
    for spec in specs {
        nodes.push(backend::docker::create(&prepared, spec, events.clone()).await?);
    }
    Ok((nodes, Some(prepared)))
}

/// Servers left running by a daemon that was killed: shut down cleanly (no
/// data is lost by a fast shutdown) so that they start under supervision.
async fn adopt_leftovers(plan: &Plan, state: &StateDir, events: &mpsc::Sender<Event>, say: Say) {
    for node in &plan.nodes {
        if let Some(pid) = pg::postmaster_pid(&state.data_dir(&node.name)) {
            say.say(format!(
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
        say.say(format!(
            "{name}: found running from an earlier daemon; stopped it to start it under supervision"
        ));
    }
}

/// Each node's directories (0700, the server account's), its cluster
/// (from the template cache when there is one) and its configuration.
async fn create_clusters(
    opts: &UpOptions,
    bins: &pg::Binaries,
    account: &pg::Account,
    specs: &[NodeSpec],
    say: Say,
) -> Result<()> {
    let state = &opts.state;
    for spec in specs {
        for dir in [state.node_dir(&spec.name), spec.socket_dir.clone()] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            account.own(&dir)?;
        }
    }
    let created = pg::ensure_clusters(bins, account, specs, opts.cache_dir.as_deref()).await?;
    if !created.is_empty() {
        say.say(format!("created clusters for {}", created.join(", ")));
    }
    for spec in specs {
        pg::write_config(spec, account)?;
    }
    Ok(())
}
