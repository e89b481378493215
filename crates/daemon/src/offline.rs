//! A lab read from its state directory, for the CLI's commands that work
//! with no daemon running (`env`, `psql`, `verify`, `status`, `events`,
//! `hum --init`, `down` of a lab whose daemon was killed). The state
//! directory is the daemon's to write; this module is the one typed way the
//! CLI reads it, so the files' shapes (`ports.json`, `secrets.json`,
//! `events.jsonl`) stay the daemon's business. Where a daemon runs, the CLI
//! asks it through `api` instead.
//!
//! [`OfflineLab`] reads `ports.json` when opened and `secrets.json` only
//! when a password is asked for: `status` works for an account that may not
//! read the owner's secrets. The free functions are checks the CLI runs
//! before any daemon exists (`prodhome check`, `doctor`, `up`).

use std::collections::BTreeMap;

use lab::{LabError, Plan};
use model::{Event, Secret};
use pg::{Binaries, Credentials, NodeSpec};

use crate::layout::StateDir;

/// Why a lab's state could not be read. The texts say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node has no kept port: the lab was never brought up.
    #[error("node {node} has no port yet: run `prodhome up` first")]
    NoPort { node: String },
    /// The node has no generated password: the lab was never brought up.
    #[error("no password for {node} yet: run `prodhome up` first")]
    NoPassword { node: String },
    /// Some node has no port or credentials; needed for all of them.
    #[error("node {node} has no port or credentials yet: run `prodhome up` first")]
    NotUpYet { node: String },
    /// A file of the state directory is missing, unreadable or damaged, or
    /// the directory is too deep for a node's socket; the text names it.
    #[error("{0:#}")]
    State(anyhow::Error),
    /// Preparing hum's tables on the servers failed.
    #[error("{0:#}")]
    Tables(anyhow::Error),
}

/// Every node's passwords and every `[secret.NAME]`, by name.
pub type LabSecrets = (BTreeMap<String, Credentials>, BTreeMap<String, Secret>);

/// One lab's state as kept on disk: its plan, its state directory and the
/// ports chosen on its first `up`.
pub struct OfflineLab<'a> {
    plan: &'a Plan,
    state: &'a StateDir,
    ports: BTreeMap<String, u16>,
}

impl<'a> OfflineLab<'a> {
    /// Reads the kept ports (none before the first `up`); creates nothing.
    pub fn open(plan: &'a Plan, state: &'a StateDir) -> OfflineLab<'a> {
        let ports = crate::ports::load(state);
        OfflineLab { plan, state, ports }
    }

    /// Every port chosen and kept, nodes' and proxy links', by name.
    pub fn ports(&self) -> &BTreeMap<String, u16> {
        &self.ports
    }

    /// `node`'s port: the lab file's, else the one kept since its first `up`.
    pub fn port(&self, node: &str) -> Option<u16> {
        let fixed = self.plan.node(node).and_then(|n| n.port);
        fixed.or_else(|| self.ports.get(node).copied())
    }

    /// Like [`port`](Self::port), failing with what to do when there is none.
    pub fn required_port(&self, node: &str) -> Result<u16, Error> {
        self.port(node).ok_or_else(|| Error::NoPort { node: node.into() })
    }

    /// `node`'s superuser password.
    pub fn superuser_password(&self, node: &str) -> Result<Secret, Error> {
        let secrets = self.credentials()?;
        let creds = secrets
            .get(node)
            .ok_or_else(|| Error::NoPassword { node: node.into() })?;
        Ok(creds.superuser.clone())
    }

    /// A `[secret.NAME]`; `None` until the next `up` generates it.
    pub fn named_secret(&self, name: &str) -> Result<Option<Secret>, Error> {
        crate::secrets::named(self.state, name).map_err(Error::State)
    }

    /// Every node's passwords and every `[secret.NAME]`, generating (and
    /// keeping, in the state directory it creates when missing) any the
    /// lab lacks: for `prodhome export`, whose files carry the very
    /// passwords `up` uses, so a lab exported before its first `up` keeps
    /// them too.
    pub fn secrets_or_generate(&self) -> Result<LabSecrets, Error> {
        self.state
            .create(&self.plan.name)
            .map_err(|e| Error::State(anyhow::anyhow!("creating {}: {e}", self.state.root().display())))?;
        let nodes: Vec<&str> = self.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        let credentials = crate::secrets::load_or_generate(self.state, &nodes).map_err(Error::State)?;
        let named =
            crate::secrets::named_or_generate(self.state, &self.plan.secrets).map_err(Error::State)?;
        Ok((credentials, named))
    }

    /// Gives every node with no port of its own and none kept a free one,
    /// and keeps it (in `ports.json`, as `up` would): for `prodhome
    /// export`, whose files publish each node at its port on 127.0.0.1, so
    /// that `psql`, `verify` and `up` find the exported lab's nodes where
    /// they are. Returns every node's port.
    pub fn keep_node_ports(&mut self) -> Result<BTreeMap<String, u16>, Error> {
        self.ports = crate::ports::keep_node_ports(self.plan, self.state).map_err(Error::State)?;
        Ok(self
            .plan
            .nodes
            .iter()
            .filter_map(|n| self.port(&n.name).map(|p| (n.name.clone(), p)))
            .collect())
    }

    /// Where the live daemon runs that holds this lab's name on the Docker
    /// Engine, when it is another lab's (a same-named lab from another
    /// directory): its containers are named after the lab, and are not
    /// this lab's to remove.
    pub fn engine_name_held_elsewhere(&self) -> Option<String> {
        let holder = crate::labname::holder(&self.plan.name)?;
        (holder != self.state.root().display().to_string()).then_some(holder)
    }

    /// Every node as the lab runs it (its own or kept port, generated
    /// credentials), for commands that talk to the servers directly.
    pub fn node_specs(&self) -> Result<Vec<NodeSpec>, Error> {
        // In a controller's container: the servers its engine runs.
        if let Some(external) = crate::external::ExternalLab::load(self.state) {
            return external.node_specs(self.plan, self.state).map_err(Error::State);
        }
        let secrets = self.credentials()?;
        let mut ports = self.ports.clone();
        for node in &self.plan.nodes {
            match self.port(&node.name) {
                Some(port) if secrets.contains_key(&node.name) => {
                    ports.insert(node.name.clone(), port);
                }
                _ => {
                    return Err(Error::NotUpYet {
                        node: node.name.clone(),
                    });
                }
            }
        }
        crate::assemble::node_specs(self.plan, self.state, &ports, &secrets).map_err(Error::State)
    }

    /// The event log's events at or after `since_ns`, oldest first.
    pub fn events(&self, since_ns: i64) -> Vec<Event> {
        crate::eventlog::read(&self.state.events(), since_ns)
    }

    /// Prepares `workload`'s tables on `target` and the subscribers that
    /// should have them, as the daemon's own hum does.
    pub async fn init_hum_tables(
        &self,
        nodes: &[NodeSpec],
        target: &hum::Target,
        workload: &hum::Workload,
        fresh: bool,
    ) -> Result<(), Error> {
        crate::humtables::init(
            self.plan,
            self.state,
            nodes,
            target,
            workload,
            fresh,
            &Default::default(),
        )
        .await
        .map_err(Error::Tables)
    }

    fn credentials(&self) -> Result<BTreeMap<String, Credentials>, Error> {
        match crate::external::ExternalLab::load(self.state) {
            Some(external) => self
                .plan
                .nodes
                .iter()
                .map(|n| Ok((n.name.clone(), external.credentials(&n.name)?)))
                .collect::<anyhow::Result<_>>()
                .map_err(Error::State),
            None => crate::secrets::load(self.state).map_err(Error::State),
        }
    }
}

/// hum's connection to `node` at `port` (its client port, or the proxy's in
/// front of it), as the superuser.
pub fn hum_target(node: &NodeSpec, port: u16) -> hum::Target {
    crate::assemble::hum_target(node, port)
}

/// Every problem `up` would refuse `plan` for before starting anything;
/// the Postgres settings only with the binaries to judge them.
pub fn preflight(plan: &Plan, bins: Option<&Binaries>) -> Vec<LabError> {
    crate::preflight::check(plan, bins)
}

/// True when nothing listens on 127.0.0.1:`port`.
pub fn port_is_free(port: u16) -> bool {
    crate::ports::is_free(port)
}

/// The influx sink's options from `[sample.influx]`, untagged, for a
/// one-off look at the sink; `Err` names the token variable that is unset.
pub fn influx_options(influx: &lab::InfluxPlan) -> Result<store::InfluxOptions, MissingToken> {
    crate::assemble::influx_options(influx, None)
}

pub use crate::assemble::MissingToken;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(plan: &Plan) -> Vec<&str> {
        plan.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn a_lab_never_up_says_to_run_up_and_reads_what_up_kept_after() {
        let dir = tempfile::tempdir().unwrap();
        let plan = lab::seed();
        let state = StateDir::new(dir.path().join("s"));
        let first = &plan.nodes[0].name;

        let lab = OfflineLab::open(&plan, &state);
        assert!(lab.ports().is_empty());
        assert_eq!(lab.port(first), None);
        let e = lab.required_port(first).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("node {first} has no port yet: run `prodhome up` first")
        );
        let e = lab.superuser_password(first).unwrap_err();
        assert!(e.to_string().contains("has not been brought up yet"), "{e}");
        assert!(lab.node_specs().is_err());

        // What `up` keeps on its first run.
        std::fs::create_dir_all(state.root()).unwrap();
        let ports = crate::ports::resolve(&plan, &state, &[]).unwrap();
        let secrets = crate::secrets::load_or_generate(&state, &names(&plan)).unwrap();

        let lab = OfflineLab::open(&plan, &state);
        assert_eq!(lab.ports(), &ports);
        assert_eq!(lab.required_port(first).unwrap(), ports[first]);
        let password = lab.superuser_password(first).unwrap();
        assert_eq!(password.expose(), secrets[first].superuser.expose());
        let specs = lab.node_specs().unwrap();
        assert_eq!(specs.len(), plan.nodes.len());
        assert!(specs.iter().all(|s| s.port == ports[&s.name]), "{specs:?}");
        let e = lab.superuser_password("nosuchnode").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no password for nosuchnode yet: run `prodhome up` first"
        );
        assert!(lab.events(0).is_empty());
    }
}
