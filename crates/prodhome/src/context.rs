//! Which lab and which state directory a command works on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use daemon::StateDir;
use daemon::offline::OfflineLab;
use lab::Plan;

use crate::cli::Global;

pub(crate) struct Context {
    pub(crate) plan: Plan,
    pub(crate) state: StateDir,
    /// True when no lab file was found and the built-in seed lab is used.
    pub(crate) seed: bool,
}

impl Context {
    /// Every node as the running lab has it (kept ports, generated
    /// secrets), read from the state directory: for commands that talk to
    /// the servers directly.
    pub(crate) fn node_specs(&self) -> Result<Vec<pg::NodeSpec>> {
        Ok(self.offline().node_specs()?)
    }

    /// The lab as its state directory keeps it, for commands that work
    /// with no daemon running.
    pub(crate) fn offline(&self) -> OfflineLab<'_> {
        OfflineLab::open(&self.plan, &self.state)
    }

    pub(crate) fn load(global: &Global) -> Result<Context> {
        let (plan, seed) = match lab_file(global)? {
            Some(f) => (lab::load(&f).map_err(|e| anyhow!("{e}"))?, false),
            None => (lab::seed(), true),
        };
        let state = state_dir(global, &plan)?;
        Ok(Context { plan, state, seed })
    }

    /// Fails with the list of names when `name` is neither a node nor a service.
    pub(crate) fn check_unit(&self, name: &str) -> Result<()> {
        if self.plan.node(name).is_some() || self.plan.services.iter().any(|s| s.name == name) {
            return Ok(());
        }
        Err(anyhow!(
            "no node or service \"{name}\" in lab {}; there are {}",
            self.plan.name,
            self.unit_names().join(", ")
        ))
    }

    /// Every node and service, in lab-file order.
    pub(crate) fn unit_names(&self) -> Vec<String> {
        let nodes = self.plan.nodes.iter().map(|n| n.name.clone());
        nodes
            .chain(self.plan.services.iter().map(|s| s.name.clone()))
            .collect()
    }

    /// The arguments that make another prodhome process pick the same lab.
    pub(crate) fn global_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(file) = &self.plan.file {
            args.extend(["-f".to_string(), file.display().to_string()]);
        }
        args.extend(["--state-dir".to_string(), self.state.root().display().to_string()]);
        args
    }

    /// A client of the running daemon `info` for reading (status, events):
    /// with the owner's token when this account can read it, without it
    /// otherwise (the daemon lets every local account read).
    pub(crate) fn client(&self, info: &api::DaemonInfo) -> api::Client {
        let client = api::Client::new(&info.api);
        match self.token() {
            Ok(Some(token)) => client.with_token(token),
            _ => client,
        }
    }

    /// A client for commands that change the lab. Fails before asking,
    /// saying whose lab it is, when this account cannot read the token.
    pub(crate) fn control(&self, info: &api::DaemonInfo) -> Result<api::Client> {
        let client = api::Client::new(&info.api);
        match self.token() {
            Ok(Some(token)) => Ok(client.with_token(token)),
            // A daemon from before tokens: it needs none.
            Ok(None) => Ok(client),
            Err(e) => Err(self.not_owner(e)),
        }
    }

    /// The one place the CLI reads `api.token`; `None` when there is none.
    fn token(&self) -> std::io::Result<Option<model::Secret>> {
        match self.state.read_api_token() {
            Ok(token) => Ok(Some(token)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn not_owner(&self, e: std::io::Error) -> anyhow::Error {
        let owner = std::fs::metadata(self.state.api_token())
            .map(|m| account_name(m.uid()))
            .unwrap_or_else(|_| "the account that started it".into());
        let me = account_name(nix::unistd::getuid().as_raw());
        anyhow!(
            "only the owner of lab {} ({owner}) may change it, and this account ({me}) cannot read {} ({e}). \
             Run the command as {owner}; `prodhome status` and the dashboard work for every account",
            self.plan.name,
            self.state.api_token().display()
        )
    }

    /// Fails with the list of nodes when `node` is not one of them.
    pub(crate) fn check_node(&self, node: &str) -> Result<()> {
        if self.plan.node(node).is_some() {
            return Ok(());
        }
        let names: Vec<&str> = self.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        Err(anyhow!(
            "no node \"{node}\" in lab {}; nodes are {}",
            self.plan.name,
            names.join(", ")
        ))
    }
}

/// The lab file a command works on: `-f FILE`, else `./prodhome.toml` when
/// it exists; `None` means the built-in seed lab.
pub(crate) fn lab_file(global: &Global) -> Result<Option<PathBuf>> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    Ok(match &global.file {
        Some(f) => Some(absolute(&cwd, f)),
        None => Some(cwd.join(lab::init::SEED_LAB_FILE)).filter(|f| f.exists()),
    })
}

/// The lab's state directory (the path only; nothing is created).
pub(crate) fn state_dir(global: &Global, plan: &Plan) -> Result<StateDir> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    Ok(match &global.state_dir {
        Some(dir) => StateDir::new(absolute(&cwd, dir)),
        None => StateDir::default_for(&plan.dir, &plan.name),
    })
}

/// `name (uid N)`, or `uid N` for an account without a name.
fn account_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Where template clusters are cached: `$PRODHOME_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/prodhome`, else `~/.cache/prodhome`. `off` disables it.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PRODHOME_CACHE_DIR") {
        return (dir != "off").then(|| PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("prodhome"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("prodhome"))
}

/// A current-thread runtime for a command's async work.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
