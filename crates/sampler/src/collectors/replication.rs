//! `replication`: how far behind each link is, seen from both ends.
//!
//! - Every node: its replication slots (active, WAL retained, bytes not yet
//!   confirmed, the walsender's write/flush/replay lag) and its
//!   subscriptions (workers, apply and sync errors, age of the last message).
//! - Publishers: the heartbeat. Each cycle the sampler inserts a row into
//!   `prodhome.probe` (replicated by every publication of the lab) with
//!   `replication` = the publication's name, and remembers the WAL position
//!   after it. A slot's `confirmed_lag_s` is the age of the oldest
//!   heartbeat its subscriber has not confirmed: time lag measured on the
//!   publisher, so it keeps growing when the subscriber is paused or cut
//!   off — exactly when lag read on the subscriber would say nothing.
//! - Subscribers: `heartbeat_age_s`, how old the newest heartbeat that
//!   arrived is (one clock: every node is on this machine).
//!
//! Old heartbeat rows are deleted on the publisher (the delete replicates)
//! once a minute, keeping ten minutes of them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use model::Point;

use super::{Ctx, seconds};
use crate::failure::Failure;
use crate::options::{NodeTarget, ReplicationTarget};
use crate::session::Session;

/// The one lag reading the status shares (`pg::lag`).
const SLOTS: &str = pg::SLOTS;

const SUBSCRIPTIONS: &str = "SELECT s.subname,
        count(st.pid)::bigint,
        count(st.pid) FILTER (WHERE st.relid IS NULL)::bigint,
        EXTRACT(epoch FROM now() - max(st.last_msg_receipt_time))::float8,
        coalesce(max(ss.apply_error_count), 0)::bigint,
        coalesce(max(ss.sync_error_count), 0)::bigint
    FROM pg_subscription s
    LEFT JOIN pg_stat_subscription st ON st.subid = s.oid
    LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid
    WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    GROUP BY s.subname";

const HEARTBEAT: &str = "INSERT INTO prodhome.probe (replication) SELECT unnest($1::text[])";

/// Runs after the heartbeat's commit (statements in one pipeline run in
/// order), so a subscriber that confirmed this position has the heartbeat.
const HEARTBEAT_LSN: &str = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint";

const HEARTBEAT_CLEANUP: &str = "DELETE FROM prodhome.probe
    WHERE replication = ANY($1::text[]) AND at < now() - interval '10 minutes'";

const HEARTBEAT_AGE: &str = "SELECT replication, EXTRACT(epoch FROM now() - max(at))::float8
    FROM prodhome.probe WHERE replication = ANY($1::text[]) GROUP BY replication";

pub(crate) const STATEMENTS: &[&str] = &[SLOTS, SUBSCRIPTIONS];
const PUBLISHER_STATEMENTS: &[&str] = &[HEARTBEAT, HEARTBEAT_LSN, HEARTBEAT_CLEANUP];
const SUBSCRIBER_STATEMENTS: &[&str] = &[HEARTBEAT_AGE];

const CLEANUP_EVERY: Duration = Duration::from_secs(60);
/// Heartbeats older than this are forgotten (a subscriber further behind
/// shows at least this much lag).
const HISTORY: Duration = Duration::from_secs(600);

/// What this node is in the lab's replications, and the heartbeats it wrote.
pub(crate) struct State {
    /// Publications this node writes heartbeats for.
    publishes: Vec<String>,
    /// (publication, publisher) this node reads heartbeats of.
    subscribes: Vec<(String, String)>,
    /// Slot name -> (publication, subscriber), for this node's slots.
    slots: HashMap<String, (String, String)>,
    /// (WAL position after the heartbeat, when it was written), oldest first.
    history: VecDeque<(i64, i64)>,
    last_cleanup: Option<Instant>,
}

impl State {
    pub(crate) fn new(node: &NodeTarget, replications: &[ReplicationTarget]) -> State {
        let mut state = State {
            publishes: Vec::new(),
            subscribes: Vec::new(),
            slots: HashMap::new(),
            history: VecDeque::new(),
            last_cleanup: None,
        };
        for r in replications {
            if r.publisher == node.name {
                state.publishes.push(r.name.clone());
                for s in &r.subscribers {
                    state
                        .slots
                        .insert(model::subscription_name(&r.name, s), (r.name.clone(), s.clone()));
                }
            }
            if r.subscribers.contains(&node.name) {
                state.subscribes.push((r.name.clone(), r.publisher.clone()));
            }
        }
        state
    }

    /// The statements this node's session must prepare.
    pub(crate) fn statements(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.publishes.is_empty() {
            out.extend_from_slice(PUBLISHER_STATEMENTS);
        }
        if !self.subscribes.is_empty() {
            out.extend_from_slice(SUBSCRIBER_STATEMENTS);
        }
        out
    }
}

pub(crate) async fn collect(
    session: &Session,
    state: &mut State,
    ctx: Ctx<'_>,
) -> Result<Vec<Point>, Failure> {
    let publishes = state.publishes.clone();
    let subscribed: Vec<String> = state.subscribes.iter().map(|(r, _)| r.clone()).collect();
    let heartbeat = async {
        if publishes.is_empty() {
            return Ok(None);
        }
        let (written, lsn) = futures_util::future::join(
            session.query(HEARTBEAT, &[&publishes]),
            session.query(HEARTBEAT_LSN, &[]),
        )
        .await;
        written?;
        Ok::<_, Failure>(lsn?.first().map(|r| r.get::<_, i64>(0)))
    };
    let ages = async {
        if subscribed.is_empty() {
            return Ok(Vec::new());
        }
        session.query(HEARTBEAT_AGE, &[&subscribed]).await
    };
    let (heartbeat, slots, subs, ages) = futures_util::future::join4(
        heartbeat,
        session.query(SLOTS, &[]),
        session.query(SUBSCRIPTIONS, &[]),
        ages,
    )
    .await;
    let now = model::now_ns();
    remember(&mut state.history, heartbeat?, now);

    let mut points = Vec::new();
    for row in slots? {
        points.push(slot_point(&ctx, state, pg::SlotRow::read(&row), now));
    }
    for row in subs? {
        points.push(subscription_point(&ctx, &row));
    }
    let ages: HashMap<String, f64> = ages?
        .iter()
        .map(|r| (r.get::<_, String>(0), seconds(r.get(1))))
        .collect();
    for (replication, publisher) in &state.subscribes {
        if let Some(age) = ages.get(replication) {
            points.push(
                ctx.point("replication")
                    .tag("replication", replication.clone())
                    .tag("publisher", publisher.clone())
                    .float("heartbeat_age_s", *age),
            );
        }
    }

    if !publishes.is_empty() && state.last_cleanup.is_none_or(|t| t.elapsed() >= CLEANUP_EVERY) {
        state.last_cleanup = Some(Instant::now());
        session.query(HEARTBEAT_CLEANUP, &[&publishes]).await?;
    }
    Ok(points)
}

/// Adds the heartbeat just written (when there is one) to the history and
/// forgets those older than [`HISTORY`].
fn remember(history: &mut VecDeque<(i64, i64)>, lsn: Option<i64>, now: i64) {
    if let Some(lsn) = lsn {
        history.push_back((lsn, now));
    }
    while let Some((_, at)) = history.front() {
        if now - at <= HISTORY.as_nanos() as i64 {
            break;
        }
        history.pop_front();
    }
}

/// One replication slot of this publisher, with its lags.
fn slot_point(ctx: &Ctx<'_>, state: &State, row: pg::SlotRow, now: i64) -> Point {
    let (replication, subscriber) = state
        .slots
        .get(&row.slot)
        .cloned()
        .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
    let mut p = ctx
        .point("replication")
        .tag("slot", row.slot)
        .tag("replication", replication)
        .tag("subscriber", subscriber)
        .int("active", row.active as i64);
    if let Some(retained) = row.retained_bytes {
        p = p.int("retained_bytes", retained);
    }
    if let Some(lag) = row.lag_bytes {
        p = p.int("lag_bytes", lag);
    }
    if let Some(confirmed) = row.confirmed_lsn
        && !state.publishes.is_empty()
    {
        p = p.float("confirmed_lag_s", unconfirmed_age(&state.history, confirmed, now));
    }
    if row.streaming {
        // NULL lags mean "nothing to replay lately": caught up.
        p = p
            .float("write_lag_s", seconds(row.write_lag_s))
            .float("flush_lag_s", seconds(row.flush_lag_s))
            .float("replay_lag_s", seconds(row.replay_lag_s));
    }
    p
}

/// One subscription of this subscriber: its workers and errors.
fn subscription_point(ctx: &Ctx<'_>, row: &tokio_postgres::Row) -> Point {
    let workers: i64 = row.get(1);
    let mut p = ctx
        .point("replication")
        .tag("subscription", row.get::<_, String>(0))
        .int("workers", workers)
        .int("apply_running", row.get::<_, i64>(2).min(1))
        .int("apply_errors", row.get(4))
        .int("sync_errors", row.get(5));
    if workers > 0 {
        p = p.float("last_msg_age_s", seconds(row.get(3)));
    }
    p
}

/// The age in seconds of the oldest heartbeat written after `confirmed`
/// (0 when the subscriber confirmed them all).
pub(crate) fn unconfirmed_age(history: &VecDeque<(i64, i64)>, confirmed: i64, now_ns: i64) -> f64 {
    history
        .iter()
        .find(|(lsn, _)| *lsn > confirmed)
        .map(|(_, at)| ((now_ns - at) as f64 / 1e9).max(0.0))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_unconfirmed_heartbeat() {
        let s = 1_000_000_000;
        let history: VecDeque<(i64, i64)> = [(100, 10 * s), (200, 11 * s), (300, 12 * s)].into();
        assert_eq!(unconfirmed_age(&history, 300, 13 * s), 0.0);
        assert_eq!(unconfirmed_age(&history, 250, 13 * s), 1.0);
        assert_eq!(unconfirmed_age(&history, 150, 13 * s), 2.0);
        assert_eq!(unconfirmed_age(&history, 0, 13 * s), 3.0);
        assert_eq!(unconfirmed_age(&VecDeque::new(), 0, 13 * s), 0.0);
    }

    #[test]
    fn roles_come_from_the_replications() {
        let node = |name: &str| NodeTarget {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: 1,
            user: "postgres".into(),
            password: model::Secret::new(""),
            dbname: "postgres".into(),
            postmaster_pid: None,
            local: true,
        };
        let reps = [ReplicationTarget {
            name: "books".into(),
            publisher: "pub".into(),
            subscribers: vec!["s1".into(), "s2".into()],
        }];
        let publisher = State::new(&node("pub"), &reps);
        assert_eq!(publisher.publishes, ["books"]);
        assert_eq!(
            publisher.slots["books_s2"],
            ("books".to_string(), "s2".to_string())
        );
        assert_eq!(publisher.statements(), PUBLISHER_STATEMENTS);
        let subscriber = State::new(&node("s1"), &reps);
        assert_eq!(subscriber.subscribes, [("books".to_string(), "pub".to_string())]);
        assert_eq!(subscriber.statements(), SUBSCRIBER_STATEMENTS);
    }
}
