//! The DDL follower: DDL run on a publisher by any client reaches the
//! subscribers of the replications with `ddl = "follow"` that publish the
//! tables it touched (see `pg::ddl` for how it is recorded and why the order
//! is safe).
//!
//! One task per publisher polls its `prodhome.ddl_queue` every
//! [`TICK`] and, per subscriber, applies each change once, in queue order,
//! from the last id that subscriber recorded as applied. Then, for a
//! `tables = "all"` replication whose change created tables, it grants the
//! replication role SELECT on them on the publisher and refreshes the
//! subscription, so they join it. A `tables = [...]` replication keeps its
//! list: a change that touches none of its tables is recorded as skipped.
//! A change that fails on a subscriber is a `DdlFailed` event once, is
//! retried every [`RETRY`] and holds back later changes for that
//! subscriber only, because they may depend on it.

use std::sync::Arc;
use std::time::Duration;

use lab::{Ddl, Plan, Tables};
use model::{Event, EventKind};
use pg::NodeSpec;
use pg::ddl::Change;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_postgres::Client;

use crate::running::{Lab, LinkErrorSource, LinkErrors};

/// How often the queue is read: the bulk of a change's delay.
const TICK: Duration = Duration::from_millis(200);
/// How long a new connection to a node may take: a paused one never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How soon a change that failed on a subscriber is tried again.
const RETRY: Duration = Duration::from_secs(3);
/// Queue rows read per tick.
const BATCH: i64 = 500;

/// Starts one follower per publisher; publishers with no `follow`
/// replication get their recording trigger dropped.
pub(crate) fn spawn(plan: &Plan, lab: &Arc<Lab>, events: mpsc::Sender<Event>) -> JoinHandle<()> {
    let followers = followers(plan, lab);
    tokio::spawn(async move {
        let runs = followers.into_iter().map(|f| f.run(events.clone()));
        futures_util::future::join_all(runs).await;
    })
}

fn followers(plan: &Plan, lab: &Lab) -> Vec<Follower> {
    let spec = |name: &str| lab.node(name).map(|n| n.spec().clone());
    let mut out: Vec<Follower> = Vec::new();
    for repl in &plan.replications {
        let Some(node) = spec(&repl.publisher) else {
            continue;
        };
        let at = match out.iter().position(|f| f.node.name == repl.publisher) {
            Some(at) => at,
            None => {
                out.push(Follower {
                    node,
                    subscribers: Vec::new(),
                    client: None,
                    installed: false,
                    granted: 0,
                });
                out.len() - 1
            }
        };
        if repl.ddl != Ddl::Follow {
            continue;
        }
        let follower = &mut out[at];
        for name in &repl.subscribers {
            let Some(node) = spec(name) else { continue };
            let route = Route {
                replication: repl.name.clone(),
                subscription: pg::subscription_name(&repl.name, name),
                tables: match &repl.tables {
                    Tables::All => None,
                    Tables::List(list) => Some(list.iter().map(|t| full_name(t)).collect()),
                },
            };
            match follower.subscribers.iter_mut().find(|s| s.node.name == *name) {
                Some(sub) => sub.routes.push(route),
                None => follower.subscribers.push(Subscriber {
                    node,
                    routes: vec![route],
                    client: None,
                    last: None,
                    failed: None,
                    link_errors: lab.link_errors.clone(),
                }),
            }
        }
    }
    out
}

/// `name` as the queue writes it: `public.name` when unqualified.
fn full_name(table: &str) -> String {
    if table.contains('.') {
        table.to_string()
    } else {
        format!("public.{table}")
    }
}

/// One replication of a subscriber: its subscription and, for a
/// `tables = [...]` replication, the tables it carries.
struct Route {
    replication: String,
    subscription: String,
    tables: Option<Vec<String>>,
}

struct Subscriber {
    node: NodeSpec,
    routes: Vec<Route>,
    client: Option<Client>,
    /// The last queue id it applied (or skipped), once read from it.
    last: Option<i64>,
    /// The change that failed, and when to try it again.
    failed: Option<(i64, Instant)>,
    /// Where `status` and the dashboard read a link's error: a change held
    /// back shows on every link of this subscriber until it applies.
    link_errors: LinkErrors,
}

impl Subscriber {
    /// Marks (with `Some`) or clears every link of this subscriber.
    fn mark_links(&self, error: Option<&str>) {
        for route in &self.routes {
            let (replication, node) = (&route.replication, &self.node.name);
            match error {
                Some(message) => {
                    self.link_errors
                        .set(replication, node, LinkErrorSource::Ddl, message.into())
                }
                None => self.link_errors.clear(replication, node, LinkErrorSource::Ddl),
            }
        }
    }
}

struct Follower {
    node: NodeSpec,
    subscribers: Vec<Subscriber>,
    client: Option<Client>,
    installed: bool,
    /// The last change whose new tables were granted to the replication role.
    granted: i64,
}

impl Follower {
    async fn run(mut self, events: mpsc::Sender<Event>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if self.tick(&events).await.is_none() && self.installed && self.subscribers.is_empty() {
                return;
            }
        }
    }

    /// One look at the queue; `None` when the publisher cannot be reached.
    async fn tick(&mut self, events: &mpsc::Sender<Event>) -> Option<()> {
        let publisher = pg::kept_admin(&mut self.client, &self.node, CONNECT_TIMEOUT).await?;
        if !self.installed {
            let record = !self.subscribers.is_empty();
            if let Err(e) = pg::ddl::install(publisher, &self.node.name, record).await {
                tracing::warn!("{e}; DDL on {} does not reach its subscribers", self.node.name);
                return None;
            }
            self.installed = true;
        }
        if self.subscribers.is_empty() {
            return None;
        }
        let mut after = i64::MAX;
        for sub in &mut self.subscribers {
            if let Some(last) = sub.last_applied(&self.node.name).await {
                after = after.min(last);
            }
        }
        if after == i64::MAX {
            return Some(());
        }
        let changes = match pg::ddl::pending(publisher, &self.node.name, after, BATCH).await {
            Ok(changes) => changes,
            Err(_) => {
                self.client = None;
                return None;
            }
        };
        for change in &changes {
            if change.created_tables() && change.last_id > self.granted {
                self.grant(change).await;
            }
            for sub in &mut self.subscribers {
                sub.follow(&self.node.name, change, events).await;
            }
        }
        Some(())
    }

    /// New tables of an all-tables replication: the replication role must
    /// read them for the initial copy the refresh starts.
    async fn grant(&mut self, change: &Change) {
        let Some(publisher) = self.client.as_ref() else {
            return;
        };
        let tables: Vec<String> = change
            .tables
            .iter()
            .filter(|t| !t.starts_with("prodhome."))
            .cloned()
            .collect();
        match pg::ddl::grant_tables(publisher, &self.node.name, &tables).await {
            Ok(()) => self.granted = change.last_id,
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

impl Subscriber {
    async fn last_applied(&mut self, publisher: &str) -> Option<i64> {
        if self.last.is_none() {
            let client = pg::kept_admin(&mut self.client, &self.node, CONNECT_TIMEOUT).await?;
            match pg::ddl::applied(client, &self.node.name, publisher).await {
                Ok(last) => self.last = Some(last),
                Err(_) => self.client = None,
            }
        }
        self.last
    }

    /// Applies (or skips) `change` unless done already or held back.
    async fn follow(&mut self, publisher: &str, change: &Change, events: &mpsc::Sender<Event>) {
        let Some(last) = self.last else { return };
        if change.last_id <= last {
            return;
        }
        match self.failed {
            Some((id, _)) if id != change.first_id => return,
            Some((_, again)) if Instant::now() < again => return,
            _ => {}
        }
        let Some(mut client) = self.client.take() else {
            return;
        };
        let result = self.follow_with(&mut client, publisher, change).await;
        let name = self.node.name.clone();
        match result {
            Ok(true) => {
                let statement = change.summary();
                let kind = EventKind::DdlApplied {
                    subscriber: name.clone(),
                    statement,
                };
                let _ = events.send(Event::now(&name, kind)).await;
            }
            Ok(false) => {}
            Err(e) if client.is_closed() || e.kind() == pg::ErrorKind::Connect => {
                self.last = None;
                return;
            }
            Err(e) => {
                if self.failed.is_none() {
                    let message = failure_help(&e, &name, publisher, change);
                    self.mark_links(Some(&format!("{}: {message}", change.summary())));
                    let kind = EventKind::DdlFailed {
                        subscriber: name.clone(),
                        statement: change.summary(),
                        message,
                    };
                    let _ = events.send(Event::now(&name, kind)).await;
                }
                self.failed = Some((change.first_id, Instant::now() + RETRY));
                self.client = Some(client);
                return;
            }
        }
        if self.failed.take().is_some() {
            self.mark_links(None);
        }
        self.last = Some(change.last_id);
        self.client = Some(client);
    }

    /// `Ok(true)` when applied, `Ok(false)` when not for this subscriber.
    async fn follow_with(
        &self,
        client: &mut Client,
        publisher: &str,
        change: &Change,
    ) -> Result<bool, pg::Error> {
        let node = &self.node.name;
        if !self.wants(client, change).await? {
            if std::env::var_os("PRODHOME_DEBUG").is_some() {
                eprintln!(
                    "prodhome: DDL `{}` touches no table {node} replicates from {publisher}; skipped there",
                    change.summary()
                );
            }
            pg::ddl::skip(client, node, publisher, change.last_id).await?;
            return Ok(false);
        }
        pg::ddl::apply(client, node, publisher, change).await?;
        if change.created_tables() {
            for route in self.routes.iter().filter(|r| r.tables.is_none()) {
                pg::ddl::refresh(client, node, &route.subscription).await?;
            }
        }
        Ok(true)
    }

    /// Whether `change` concerns a table this subscriber replicates (or no
    /// table at all: types, schemas, functions, which tables may use).
    async fn wants(&self, client: &Client, change: &Change) -> Result<bool, pg::Error> {
        let all = self.routes.iter().any(|r| r.tables.is_none());
        let tables: Vec<&String> = change
            .tables
            .iter()
            .filter(|t| !t.starts_with("prodhome."))
            .collect();
        if tables.is_empty() {
            if all || !change.drops_index() {
                return Ok(true);
            }
            // An index dropped on the publisher names no table any more:
            // follow it where that index exists.
            for object in &change.objects {
                if pg::ddl::relation_exists(client, object).await? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        Ok(self.routes.iter().any(|r| match &r.tables {
            None => true,
            Some(list) => tables.iter().any(|t| list.contains(t)),
        }))
    }
}

/// What the user can do about a change that failed on a subscriber.
fn failure_help(e: &pg::Error, node: &str, publisher: &str, change: &Change) -> String {
    format!(
        "{e}; later DDL waits for it and it is retried every {}s: make {node}'s schema match by hand \
         (`prodhome psql {node}`), or skip it there with \
         `UPDATE prodhome.ddl_applied SET last_id = {} WHERE node = '{node}' AND publisher = '{publisher}'`",
        RETRY.as_secs(),
        change.last_id
    )
}
