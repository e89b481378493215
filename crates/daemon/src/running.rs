//! The running lab: what `up` built, shared with the API routes, the
//! status builder, the background stages and the watchers. Below all of
//! them: it imports none of the modules that read it.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::Event;
use supervisor::{UnitHandle, UnitStatus};
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::Client;

use crate::backend::Node;
use crate::faults::Faults;
use crate::layout::StateDir;
use crate::links::Links;

/// Replication links whose worker keeps failing, by (replication,
/// subscriber): the subscriber's reason and what to do. The replication
/// watcher writes it; the status reads it.
pub(crate) type LinkErrors = Arc<std::sync::Mutex<BTreeMap<(String, String), String>>>;

/// The running lab, shared with the API routes.
pub(crate) struct Lab {
    pub(crate) name: String,
    pub(crate) api: String,
    /// (phase, message)
    pub(crate) phase: watch::Sender<(String, Option<String>)>,
    /// The nodes, through their backend, in the lab file's order.
    pub(crate) nodes: Vec<Node>,
    /// The app services, in the lab file's order.
    pub(crate) services: Vec<UnitHandle>,
    pub(crate) replications: Vec<ReplicationInfo>,
    pub(crate) state: StateDir,
    pub(crate) links: Links,
    pub(crate) faults: Arc<Faults>,
    pub(crate) store: store::Store,
    pub(crate) shutdown: Notify,
    pub(crate) link_errors: LinkErrors,
    /// Into the event log, for events the CLI reports (`POST /api/events`).
    pub(crate) events: mpsc::Sender<Event>,
    /// The status builder's admin connection to each node, kept between
    /// builds (opened again when it breaks) rather than opened every time.
    pub(crate) admin: BTreeMap<String, tokio::sync::Mutex<Option<Client>>>,
}

impl Lab {
    pub(crate) fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name() == name)
    }

    pub(crate) fn service(&self, name: &str) -> Option<&UnitHandle> {
        self.services.iter().find(|u| u.name() == name)
    }

    /// Every node's and service's name, sorted.
    pub(crate) fn unit_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.nodes.iter().map(|n| n.name().to_string()).collect();
        names.extend(self.services.iter().map(|u| u.name().to_string()));
        names.sort();
        names
    }

    /// Every node's and service's status, sorted by name.
    pub(crate) fn unit_statuses(&self) -> Vec<UnitStatus> {
        let mut all: Vec<UnitStatus> = self.nodes.iter().map(Node::status).collect();
        all.extend(self.services.iter().map(UnitHandle::status));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

pub(crate) struct ReplicationInfo {
    pub(crate) name: String,
    pub(crate) publisher: String,
    pub(crate) subscribers: Vec<String>,
}
