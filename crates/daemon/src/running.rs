//! The running lab: what `up` built, shared with the API routes, the
//! status builder, the background stages and the watchers. Below all of
//! them: it imports none of the modules that read it.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::Event;
use supervisor::UnitStatus;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::Client;

use crate::backend::Node;
use crate::faults::Faults;
use crate::layout::StateDir;
use crate::links::Links;
use crate::service::Service;

/// What marks a replication link `error`, by (replication, subscriber).
/// Two watchers write it, each clearing only its own marks: the
/// replication watcher (a worker that keeps failing) and the DDL follower
/// (a schema change held back). The status reads it.
#[derive(Clone, Default)]
pub(crate) struct LinkErrors(Arc<std::sync::Mutex<BTreeMap<(String, String), LinkError>>>);

/// One link's error: who found it and what it says (the reason and what to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkError {
    pub(crate) source: LinkErrorSource,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkErrorSource {
    /// The replication watcher: the subscription's worker keeps failing.
    Worker,
    /// The DDL follower: a schema change could not be applied.
    Ddl,
}

impl LinkErrors {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), LinkError>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the link, replacing whatever marked it before.
    pub(crate) fn set(&self, replication: &str, subscriber: &str, source: LinkErrorSource, message: String) {
        let key = (replication.to_string(), subscriber.to_string());
        self.lock().insert(key, LinkError { source, message });
    }

    /// Takes back `source`'s mark on the link; another's stays.
    pub(crate) fn clear(&self, replication: &str, subscriber: &str, source: LinkErrorSource) {
        let key = (replication.to_string(), subscriber.to_string());
        let mut errors = self.lock();
        if errors.get(&key).is_some_and(|e| e.source == source) {
            errors.remove(&key);
        }
    }

    /// The link's error as the status shows it.
    pub(crate) fn shown(&self, replication: &str, subscriber: &str) -> Option<String> {
        let key = (replication.to_string(), subscriber.to_string());
        self.lock().get(&key).map(|e| match e.source {
            LinkErrorSource::Worker => e.message.clone(),
            LinkErrorSource::Ddl => format!("schema change not applied: {}", e.message),
        })
    }
}

/// The running lab, shared with the API routes.
pub(crate) struct Lab {
    pub(crate) name: String,
    pub(crate) api: String,
    /// (phase, message)
    pub(crate) phase: watch::Sender<(String, Option<String>)>,
    /// The nodes, through their backend, in the lab file's order.
    pub(crate) nodes: Vec<Node>,
    /// The app services, in the lab file's order.
    pub(crate) services: Vec<Service>,
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

    pub(crate) fn service(&self, name: &str) -> Option<&Service> {
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
        all.extend(self.services.iter().map(Service::status));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

pub(crate) struct ReplicationInfo {
    pub(crate) name: String,
    pub(crate) publisher: String,
    pub(crate) subscribers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_watcher_clears_only_its_own_mark() {
        use LinkErrorSource::{Ddl, Worker};
        let errors = LinkErrors::default();
        errors.set("books", "sub1", Ddl, "relation x does not exist".into());
        assert_eq!(
            errors.shown("books", "sub1").as_deref(),
            Some("schema change not applied: relation x does not exist")
        );
        errors.clear("books", "sub1", Worker);
        assert!(errors.shown("books", "sub1").is_some());
        errors.set("books", "sub1", Worker, "its worker failed".into());
        errors.clear("books", "sub1", Ddl);
        assert_eq!(
            errors.shown("books", "sub1").as_deref(),
            Some("its worker failed")
        );
        errors.clear("books", "sub1", Worker);
        assert_eq!(errors.shown("books", "sub1"), None);
        assert_eq!(errors.shown("books", "sub2"), None);
    }
}
