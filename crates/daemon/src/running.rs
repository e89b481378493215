//! The running lab: what `up` built, shared with the API routes, the
//! status builder, the background stages and the watchers. Below all of
//! them: it imports none of the modules that read it.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::Event;
use pg::NodeSpec;
use supervisor::UnitHandle;
use tokio::sync::{Notify, mpsc, watch};

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
    pub(crate) nodes: Vec<(NodeSpec, UnitHandle)>,
    pub(crate) services: Vec<UnitHandle>,
    /// Every node and service by name.
    pub(crate) units: BTreeMap<String, UnitHandle>,
    pub(crate) replications: Vec<ReplicationInfo>,
    pub(crate) state: StateDir,
    pub(crate) links: Links,
    pub(crate) faults: Arc<Faults>,
    pub(crate) store: store::Store,
    pub(crate) shutdown: Notify,
    pub(crate) link_errors: LinkErrors,
    /// Into the event log, for events the CLI reports (`POST /api/events`).
    pub(crate) events: mpsc::Sender<Event>,
}

pub(crate) struct ReplicationInfo {
    pub(crate) name: String,
    pub(crate) publisher: String,
    pub(crate) subscribers: Vec<String>,
}
