//! What one node's log said over one sampling interval, as points and
//! events. Points are per-interval deltas (counts of what happened since
//! the last flush), never cumulative: the embedded store and InfluxDB sum
//! them over any window, and the Prometheus sink types them as
//! increments (it adds them up into `_total` counters). `max_*` fields
//! are the largest value in the interval. Each field keeps one type:
//! counts i64, times f64 in milliseconds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use model::{Event, EventKind, Point};

use crate::classify::{Class, classify};
use crate::normalize::{normalize, query_hash};
use crate::record::Record;

/// Events of one kind and key are sent at most once per this window.
const EVENT_WINDOW: Duration = Duration::from_secs(60);

/// A SQLSTATE or slow query seen reports 0 in the intervals after it for
/// this long, so charts draw its line back to zero rather than a gap.
const KEEP_ZEROS: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Times {
    count: i64,
    total_ms: f64,
    max_ms: f64,
}

impl Times {
    fn add(&mut self, ms: f64) {
        self.count += 1;
        self.total_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }
}

/// One node's counts since the last [`Tally::flush`].
pub struct Tally {
    node: String,
    by_code: BTreeMap<(String, String), i64>,
    deadlocks: i64,
    lock_waits: Times,
    checkpoints: (i64, f64, f64, i64),
    autovacuum: BTreeMap<String, Times>,
    connection_failures: BTreeMap<&'static str, i64>,
    slow: BTreeMap<String, Times>,
    worker_errors: i64,
    worker_starts: i64,
    /// Records handed to [`Tally::add`] since start.
    pub records: u64,
    last_event: HashMap<String, Instant>,
    recent_codes: HashMap<(String, String), Instant>,
    recent_slow: HashMap<String, Instant>,
}

impl Tally {
    pub fn new(node: &str) -> Tally {
        Tally {
            node: node.to_string(),
            by_code: BTreeMap::new(),
            deadlocks: 0,
            lock_waits: Times::default(),
            checkpoints: (0, 0.0, 0.0, 0),
            autovacuum: BTreeMap::new(),
            connection_failures: BTreeMap::new(),
            slow: BTreeMap::new(),
            worker_errors: 0,
            worker_starts: 0,
            records: 0,
            last_event: HashMap::new(),
            recent_codes: HashMap::new(),
            recent_slow: HashMap::new(),
        }
    }

    /// The node whose log this counts.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Counts one record; returns the event it makes, if any (rate
    /// limited: one per kind and key per minute).
    pub fn add(&mut self, r: &Record, now: Instant) -> Option<Event> {
        self.records += 1;
        let key = (r.error_severity.clone(), r.sqlstate().to_string());
        *self.by_code.entry(key).or_default() += 1;
        let (limit_key, kind) = match classify(r) {
            Class::Deadlock { statements, detail } => {
                self.deadlocks += 1;
                ("deadlock".to_string(), EventKind::Deadlock { statements, detail })
            }
            Class::LockWait {
                blocking_pid,
                wait_ms,
                statement,
                waiting,
            } => {
                self.lock_waits.max_ms = self.lock_waits.max_ms.max(wait_ms);
                if !waiting {
                    return None;
                }
                self.lock_waits.count += 1;
                let hash = query_hash(&normalize(&statement));
                let key = format!("lock_wait {} {hash}", blocking_pid.unwrap_or(0));
                let kind = EventKind::LockWait {
                    blocking_pid,
                    wait_ms: wait_ms.round() as u64,
                    statement,
                };
                (key, kind)
            }
            Class::Checkpoint {
                write_ms,
                sync_ms,
                buffers,
            } => {
                let c = &mut self.checkpoints;
                *c = (c.0 + 1, c.1 + write_ms, c.2 + sync_ms, c.3 + buffers);
                return None;
            }
            Class::Autovacuum { table, duration_ms } => {
                self.autovacuum.entry(table).or_default().add(duration_ms);
                return None;
            }
            Class::ConnectionFailure { kind } => {
                *self.connection_failures.entry(kind).or_default() += 1;
                return None;
            }
            Class::SlowStatement { query, duration_ms } => {
                let hash = query_hash(&query);
                self.slow.entry(hash.clone()).or_default().add(duration_ms);
                let kind = EventKind::SlowStatement {
                    query,
                    duration_ms: duration_ms.round() as u64,
                };
                (format!("slow {hash}"), kind)
            }
            Class::ReplicationWorker { failed } => {
                if failed {
                    self.worker_errors += 1;
                } else {
                    self.worker_starts += 1;
                }
                return self.log_error(r, now);
            }
            Class::Other => return self.log_error(r, now),
        };
        self.limited(limit_key, kind, now)
    }

    fn log_error(&mut self, r: &Record, now: Instant) -> Option<Event> {
        if !r.is_error() {
            return None;
        }
        let kind = EventKind::LogError {
            severity: r.error_severity.clone(),
            sqlstate: r.sqlstate().to_string(),
            message: r.message.clone(),
        };
        self.limited(format!("error {}", r.sqlstate()), kind, now)
    }

    fn limited(&mut self, key: String, kind: EventKind, now: Instant) -> Option<Event> {
        if let Some(last) = self.last_event.get(&key)
            && now.duration_since(*last) < EVENT_WINDOW
        {
            return None;
        }
        self.last_event.insert(key, now);
        Some(Event::now(self.node.clone(), kind))
    }

    /// The interval's points stamped `ts_ns` (with `dropped`, the lines
    /// lost to overload in it, and `lost_events`, the events the event log
    /// had no room for), and a fresh start for the next interval.
    pub fn flush(&mut self, ts_ns: i64, dropped: i64, lost_events: i64) -> Vec<Point> {
        let node = self.node.clone();
        let point = |m: &str| Point::new(m, ts_ns).tag("node", node.clone());
        let now = Instant::now();
        let mut by_code = std::mem::take(&mut self.by_code);
        keep_zeros(&mut by_code, &mut self.recent_codes, now);
        let mut slow = std::mem::take(&mut self.slow);
        keep_zeros(&mut slow, &mut self.recent_slow, now);
        let mut out = Vec::new();
        for ((severity, code), n) in by_code {
            out.push(
                point("pg_log")
                    .tag("severity", severity)
                    .tag("sqlstate", code)
                    .int("count", n),
            );
        }
        out.push(point("pg_deadlocks").int("count", std::mem::take(&mut self.deadlocks)));
        let waits = std::mem::take(&mut self.lock_waits);
        out.push(
            point("pg_lock_waits")
                .int("count", waits.count)
                .float("max_wait_ms", waits.max_ms),
        );
        let (n, write_ms, sync_ms, buffers) = std::mem::replace(&mut self.checkpoints, (0, 0.0, 0.0, 0));
        out.push(
            point("pg_checkpoints")
                .int("count", n)
                .float("write_ms", write_ms)
                .float("sync_ms", sync_ms)
                .int("buffers", buffers),
        );
        for (table, t) in std::mem::take(&mut self.autovacuum) {
            out.push(
                point("pg_autovacuum")
                    .tag("table", table)
                    .int("count", t.count)
                    .float("duration_ms", t.total_ms),
            );
        }
        for (kind, n) in std::mem::take(&mut self.connection_failures) {
            out.push(point("pg_connection_failures").tag("kind", kind).int("count", n));
        }
        for (query, t) in slow {
            out.push(
                point("pg_slow_statements")
                    .tag("query", query)
                    .int("count", t.count)
                    .float("total_ms", t.total_ms)
                    .float("max_ms", t.max_ms),
            );
        }
        out.push(
            point("pg_replication_workers")
                .int("errors", std::mem::take(&mut self.worker_errors))
                .int("starts", std::mem::take(&mut self.worker_starts)),
        );
        out.push(
            point("pg_log_dropped")
                .int("count", dropped)
                .int("events", lost_events),
        );
        out
    }
}

/// Marks the keys of `now_counts` seen at `now`, forgets those not seen for
/// [`KEEP_ZEROS`], and adds a zero for each one seen recently.
pub(crate) fn keep_zeros<K: Ord + Clone + std::hash::Hash, V: Default>(
    now_counts: &mut BTreeMap<K, V>,
    recent: &mut HashMap<K, Instant>,
    now: Instant,
) {
    for key in now_counts.keys() {
        recent.insert(key.clone(), now);
    }
    recent.retain(|_, seen| now.duration_since(*seen) < KEEP_ZEROS);
    for key in recent.keys() {
        now_counts.entry(key.clone()).or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::FieldValue;

    fn rec(severity: &str, code: &str, message: &str) -> Record {
        Record {
            error_severity: severity.into(),
            state_code: Some(code.into()),
            message: message.into(),
            ..Record::default()
        }
    }

    #[test]
    fn counts_by_sqlstate_and_events_are_rate_limited() {
        let mut t = Tally::new("n1");
        let now = Instant::now();
        let e = t.add(&rec("ERROR", "22012", "division by zero"), now);
        assert!(matches!(e.unwrap().kind, EventKind::LogError { ref sqlstate, .. } if sqlstate == "22012"));
        assert!(t.add(&rec("ERROR", "22012", "division by zero"), now).is_none());
        assert!(t.add(&rec("ERROR", "23505", "duplicate key"), now).is_some());
        assert!(t.add(&rec("LOG", "00000", "hello"), now).is_none());
        assert!(
            t.add(&rec("ERROR", "22012", "division by zero"), now + EVENT_WINDOW)
                .is_some()
        );
        let points = t.flush(5, 2, 0);
        let count = |m: &str, code: &str| {
            points
                .iter()
                .find(|p| p.measurement == m && p.tags.get("sqlstate").is_none_or(|c| c == code))
                .map(|p| p.fields["count"].clone())
        };
        assert_eq!(count("pg_log", "22012"), Some(FieldValue::I64(3)));
        assert_eq!(count("pg_log", "23505"), Some(FieldValue::I64(1)));
        assert_eq!(count("pg_log_dropped", ""), Some(FieldValue::I64(2)));
        assert!(points.iter().all(|p| p.tags["node"] == "n1" && p.ts_ns == 5));
        // The next interval starts from zero, and says so for what it saw.
        let again = t.flush(6, 0, 0);
        let zeros: Vec<_> = again.iter().filter(|p| p.measurement == "pg_log").collect();
        assert_eq!(zeros.len(), 3, "22012, 23505 and LOG 00000");
        assert!(zeros.iter().all(|p| p.fields["count"] == FieldValue::I64(0)));
    }
}
