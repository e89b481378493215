//! The replication watcher: while the lab runs, every ~2 s it asks each
//! subscriber how its subscriptions' workers are doing (`pg::worker_state`,
//! the same question `up` asks while it waits for an initial sync), over one
//! admin connection per subscriber that is opened again when it breaks.
//! When a failure counter rises it reads the reason from that subscriber's
//! log (`pg::last_worker_error`), marks the link `error` in
//! [`Lab::link_errors`] (status and the dashboard show it) and emits one
//! `ReplicationError` event; once the worker streams again it clears the
//! mark and emits `ReplicationRecovered`. A lost connection to the publisher
//! is not such an error: the link shows `disconnected` for it already.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use model::{Event, EventKind};
use pg::{NodeSpec, WorkerError, WorkerState};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_postgres::Client;

use crate::running::{Lab, LinkErrorSource, LinkErrors};

const TICK: Duration = Duration::from_secs(2);
/// A paused or overloaded subscriber must not stall the watcher.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Watches every subscriber of the lab until aborted.
pub(crate) async fn run(lab: Arc<Lab>, events: mpsc::Sender<Event>) {
    let watchers = subscribers(&lab)
        .into_iter()
        .map(|s| s.watch(lab.link_errors.clone(), events.clone()));
    futures_util::future::join_all(watchers).await;
}

fn subscribers(lab: &Lab) -> Vec<Subscriber> {
    lab.nodes
        .iter()
        .map(|node| node.spec())
        .filter_map(|spec| {
            let links: Vec<Link> = lab
                .replications
                .iter()
                .filter(|r| r.subscribers.contains(&spec.name))
                .map(|r| Link {
                    replication: r.name.clone(),
                    subscription: pg::subscription_name(&r.name, &spec.name),
                    tracker: Tracker::default(),
                    reported: None,
                })
                .collect();
            (!links.is_empty()).then(|| Subscriber {
                node: spec.clone(),
                log: lab.state.node_log(&spec.name),
                links,
                client: None,
            })
        })
        .collect()
}

/// One subscriber node and its subscriptions.
struct Subscriber {
    node: NodeSpec,
    log: PathBuf,
    links: Vec<Link>,
    client: Option<Client>,
}

impl Subscriber {
    async fn watch(mut self, errors: LinkErrors, events: mpsc::Sender<Event>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            self.tick(&errors, &events).await;
        }
    }

    async fn tick(&mut self, errors: &LinkErrors, events: &mpsc::Sender<Event>) {
        let Some(client) = pg::kept_admin(&mut self.client, &self.node, ASK_TIMEOUT).await else {
            return;
        };
        for link in &mut self.links {
            match timeout(ASK_TIMEOUT, pg::worker_state(client, &link.subscription)).await {
                Ok(Ok(state)) => link.observe(state, &self.node, &self.log, errors, events).await,
                // Down, restarting or stalled: ask again over a new
                // connection next tick; the link keeps what it showed.
                _ => {
                    self.client = None;
                    return;
                }
            }
        }
    }
}

/// One subscription on its subscriber.
struct Link {
    replication: String,
    subscription: String,
    tracker: Tracker,
    /// What the link's status says while it fails.
    reported: Option<String>,
}

impl Link {
    async fn observe(
        &mut self,
        state: WorkerState,
        node: &NodeSpec,
        log: &Path,
        errors: &LinkErrors,
        events: &mpsc::Sender<Event>,
    ) {
        let subscriber = node.name.as_str();
        let kind = match self.tracker.observe(state, Instant::now()) {
            Change::Failed => {
                // The worker logged its ERROR before it exited and was
                // counted; the log is read only when the counter rises.
                let reason =
                    pg::last_worker_error(&pg::server_log_dir(&node.data_dir), log, &self.subscription);
                if reason.as_ref().is_some_and(WorkerError::is_transient) {
                    return;
                }
                let kind = failure(&self.subscription, subscriber, log, reason.as_ref());
                let text = describe(&kind);
                // Retries of the same failure are one episode, one event.
                if self.reported.as_ref() == Some(&text) {
                    return;
                }
                errors.set(
                    &self.replication,
                    subscriber,
                    LinkErrorSource::Worker,
                    text.clone(),
                );
                self.reported = Some(text);
                kind
            }
            Change::Recovered => {
                // After a transient failure there is nothing to take back.
                if self.reported.take().is_none() {
                    return;
                }
                errors.clear(&self.replication, subscriber, LinkErrorSource::Worker);
                EventKind::ReplicationRecovered {
                    subscription: self.subscription.clone(),
                }
            }
            Change::Steady => return,
        };
        let _ = events.send(Event::now(subscriber, kind)).await;
    }
}

/// The event for a failure of `subscription` on `subscriber`.
fn failure(subscription: &str, subscriber: &str, log: &Path, reason: Option<&WorkerError>) -> EventKind {
    match reason {
        Some(reason) => EventKind::ReplicationError {
            subscription: subscription.to_string(),
            table: reason.relation(),
            message: reason.summary(),
            sqlstate: reason.lasting_code().map(str::to_string),
            advice: reason.advice(subscription, subscriber, log),
        },
        None => EventKind::ReplicationError {
            subscription: subscription.to_string(),
            table: None,
            message: format!(
                "its worker failed, and the end of {subscriber}'s log ({}) does not say why.",
                log.display()
            ),
            sqlstate: None,
            advice: format!("look at `prodhome logs {subscriber}`; the worker retries by itself"),
        },
    }
}

/// The link's status text: the event without its unit.
fn describe(kind: &EventKind) -> String {
    let event = Event::now("", kind.clone()).to_string();
    event.trim_start_matches(": ").to_string()
}

/// What a tick saw change.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// The failure counter rose.
    Failed,
    /// A link that failed streams again.
    Recovered,
    Steady,
}

/// Tells failing from streaming by the counters alone. A failed worker is
/// started again after `retry_interval` and, while the cause stays, fails
/// again within moments; so a link recovered when its counter held and the
/// same apply worker ran for longer than one retry and one tick.
#[derive(Debug, Default)]
struct Tracker {
    last: Option<WorkerState>,
    failing: bool,
    /// Since when the same apply worker has run without a new failure.
    steady_since: Option<Instant>,
}

impl Tracker {
    fn observe(&mut self, now: WorkerState, at: Instant) -> Change {
        let Some(before) = self.last.replace(now) else {
            // The first look: failures counted before the watcher started
            // are `up`'s to report, not news.
            self.steady_since = now.apply_pid.map(|_| at);
            return Change::Steady;
        };
        if now.errors > before.errors {
            self.failing = true;
            self.steady_since = None;
            return Change::Failed;
        }
        if now.apply_pid.is_none() || now.apply_pid != before.apply_pid {
            self.steady_since = now.apply_pid.map(|_| at);
            return Change::Steady;
        }
        let since = *self.steady_since.get_or_insert(at);
        if self.failing && at.duration_since(since) > now.retry_interval + TICK {
            self.failing = false;
            return Change::Recovered;
        }
        Change::Steady
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(errors: i64, pid: Option<i32>) -> WorkerState {
        WorkerState {
            errors,
            apply_pid: pid,
            retry_interval: Duration::from_secs(5),
        }
    }

    /// Feeds (seconds, state) looks and returns what each saw.
    fn feed(looks: &[(u64, WorkerState)]) -> Vec<Change> {
        let start = Instant::now();
        let mut tracker = Tracker::default();
        looks
            .iter()
            .map(|(s, st)| tracker.observe(*st, start + Duration::from_secs(*s)))
            .collect()
    }

    #[test]
    fn a_rising_counter_fails_and_only_a_worker_that_lasts_recovers() {
        use Change::*;
        let seen = feed(&[
            (0, state(0, Some(10))),
            (2, state(1, None)),     // failed
            (4, state(1, None)),     // waiting for the retry
            (6, state(1, Some(11))), // retried: alive for a moment
            (8, state(2, None)),     // and failed again
            (12, state(2, Some(12))),
            (14, state(2, Some(12))),
            (18, state(2, Some(12))),
            (20, state(2, Some(12))), // ran for 8 s > 5 s retry + 2 s tick
            (22, state(2, Some(12))),
        ]);
        assert_eq!(
            seen,
            [
                Steady, Failed, Steady, Steady, Failed, Steady, Steady, Steady, Recovered, Steady
            ]
        );
    }

    #[test]
    fn failures_counted_before_the_watcher_started_or_a_stats_reset_are_no_news() {
        use Change::*;
        let seen = feed(&[
            (0, state(9, Some(10))),
            (2, state(9, Some(10))),
            (4, state(0, Some(10))),
        ]);
        assert_eq!(seen, [Steady, Steady, Steady]);
    }

    #[test]
    fn a_table_sync_failing_beside_a_healthy_apply_worker_does_not_recover() {
        use Change::*;
        let seen = feed(&[
            (0, state(0, Some(10))),
            (2, state(1, Some(10))),
            (4, state(1, Some(10))),
            (6, state(1, Some(10))),
            (7, state(2, Some(10))),
            (9, state(2, Some(10))),
            (11, state(2, Some(10))),
            (13, state(3, Some(10))),
        ]);
        assert_eq!(
            seen,
            [Steady, Failed, Steady, Steady, Failed, Steady, Steady, Failed]
        );
    }

    #[test]
    fn a_failure_without_a_logged_reason_still_says_where_to_look() {
        let kind = failure("d_b1", "b1", Path::new("/s/b1.log"), None);
        let text = describe(&kind);
        assert!(
            text.starts_with("subscription d_b1 failed: its worker failed"),
            "{text}"
        );
        assert!(
            text.contains("/s/b1.log") && text.contains("prodhome logs b1"),
            "{text}"
        );
    }
}
