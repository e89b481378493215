use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Nanoseconds since the Unix epoch, the timestamp unit of every Event (and,
/// later, every Point: it is InfluxDB's native precision).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, when the process exited by itself.
    pub code: Option<i32>,
    /// The signal number, when a signal ended it.
    pub signal: Option<i32>,
}

impl Exit {
    /// True for a clean `exit(0)`.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (_, Some(sig)) => write!(f, "killed by signal {sig} ({})", signal_name(sig)),
            (Some(code), None) => write!(f, "exit code {code}"),
            (None, None) => f.write_str("exited"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The process was spawned.
    Started { pid: u32 },
    /// A process prodhome did not start (left over from an earlier daemon)
    /// was found running and shut down cleanly so it can be supervised.
    Adopted { pid: u32 },
    /// The readiness probe passed.
    Ready,
    /// The readiness probe failed after having passed.
    NotReady,
    /// The process ended.
    Exited { exit: Exit, expected: bool },
    /// The supervisor will start the process again after a backoff.
    Restarting { attempt: u32, after_ms: u64 },
    /// The supervisor stopped restarting a process.
    GaveUp { restarts: u32 },
    /// A probe failed often enough in a row to act on it: `probe` is
    /// `"ready"` (the unit is no longer ready) or `"live"` (the unit is
    /// restarted); `message` says what the probe saw.
    ProbeFailed { probe: String, message: String },
    /// The unit failed `restarts` times in a row without running stably: the
    /// supervisor stops restarting it (a `GaveUp` follows). Alerts key on it.
    CrashLoop { restarts: u32 },
    /// The lab as a whole changed phase (started, ready, stopping, stopped).
    Lab { phase: String },
    /// A fault was applied (`phase` "on") or undone ("off") on `target`.
    Fault {
        fault: String,
        target: String,
        phase: String,
    },
    /// Background traffic started or stopped.
    Hum { phase: String },
    /// An `[alert]` (`alert` is "crash_loop", "down" or "lag") was handed to
    /// `target` ("command" or "webhook"), or held back by the rate limit
    /// (`target` "rate_limit", `delivered` false); `detail` says how it went.
    Alert {
        alert: String,
        target: String,
        delivered: bool,
        detail: String,
    },
    /// A metrics sink ("influx", "embedded") could not write: sent once when
    /// it starts failing, with the sink's own error (InfluxDB's message).
    SinkFailed { sink: String, error: String },
    /// A sink that was failing wrote again.
    SinkRecovered { sink: String },
    /// A subscription's worker on this subscriber keeps failing (an apply
    /// conflict, a missing table or column, a permission): `message` is the
    /// subscriber's own reason from its log, `advice` what to do about it.
    /// Once per episode, however often the worker retries.
    ReplicationError {
        subscription: String,
        table: Option<String>,
        message: String,
        sqlstate: Option<String>,
        advice: String,
    },
    /// The subscription's worker streams again after a `ReplicationError`.
    ReplicationRecovered { subscription: String },
    /// `prodhome migrate` applied `file` (a script, or the command it ran)
    /// to the lab: `phase` "started", then "finished" or "failed". The
    /// dashboard draws the pair as a span.
    Migration { phase: String, file: String },
    /// DDL run on a publisher was applied on a subscriber (DDL follow).
    DdlApplied { subscriber: String, statement: String },
    /// DDL run on a publisher could not be applied on a subscriber: the
    /// follower retries it, and holds back later DDL for that subscriber.
    DdlFailed {
        subscriber: String,
        statement: String,
        message: String,
    },
    /// `prodhome verify` or `prodhome soak` finished: `command` is which,
    /// `ok` its verdict, `summary` one line of what it found (the report
    /// shows it).
    Verdict {
        command: String,
        ok: bool,
        summary: String,
    },
    /// The node's log reported a deadlock (40P01): the statements of the
    /// processes in the cycle and Postgres's DETAIL.
    Deadlock { statements: Vec<String>, detail: String },
    /// A session waited for a lock longer than `deadlock_timeout`
    /// (log_lock_waits): who holds it and what the waiter runs. At most one
    /// per blocking pid and statement per minute; the `pg_lock_waits` series counts all.
    LockWait {
        blocking_pid: Option<i64>,
        wait_ms: u64,
        statement: String,
    },
    /// A statement ran longer than log_min_duration_statement; `query` is
    /// normalised (literals are `$n`). At most one per query per minute;
    /// `pg_slow_statements` counts all.
    SlowStatement { query: String, duration_ms: u64 },
    /// The node logged an ERROR, FATAL or PANIC. At most one per SQLSTATE
    /// per minute; `pg_log` counts all.
    LogError {
        severity: String,
        sqlstate: String,
        message: String,
    },
}

impl EventKind {
    /// The snake_case name used in the event log and in filters.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Started { .. } => "started",
            EventKind::Adopted { .. } => "adopted",
            EventKind::Ready => "ready",
            EventKind::NotReady => "not_ready",
            EventKind::Exited { .. } => "exited",
            EventKind::Restarting { .. } => "restarting",
            EventKind::GaveUp { .. } => "gave_up",
            EventKind::ProbeFailed { .. } => "probe_failed",
            EventKind::CrashLoop { .. } => "crash_loop",
            EventKind::Lab { .. } => "lab",
            EventKind::Fault { .. } => "fault",
            EventKind::Hum { .. } => "hum",
            EventKind::Alert { .. } => "alert",
            EventKind::SinkFailed { .. } => "sink_failed",
            EventKind::SinkRecovered { .. } => "sink_recovered",
            EventKind::ReplicationError { .. } => "replication_error",
            EventKind::ReplicationRecovered { .. } => "replication_recovered",
            EventKind::Migration { .. } => "migration",
            EventKind::DdlApplied { .. } => "ddl_applied",
            EventKind::DdlFailed { .. } => "ddl_failed",
            EventKind::Verdict { .. } => "verdict",
            EventKind::Deadlock { .. } => "deadlock",
            EventKind::LockWait { .. } => "lock_wait",
            EventKind::SlowStatement { .. } => "slow_statement",
            EventKind::LogError { .. } => "log_error",
        }
    }
}

/// Something that happened to a unit (a node, later a service) at `ts_ns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ts_ns: i64,
    /// The unit's name, or the lab's name for lab-wide events.
    pub unit: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// An event stamped now.
    pub fn now(unit: impl Into<String>, kind: EventKind) -> Self {
        Event {
            ts_ns: now_ns(),
            unit: unit.into(),
            kind,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.unit)?;
        let written = unit_or_lab(f, &self.kind).or_else(|| database(f, &self.kind));
        // Every kind is in one of the two groups: `database` lists the
        // other group by name, so the compiler checks it.
        written.unwrap_or(Ok(()))
    }
}

/// What a unit, the lab, a fault, hum, an alert or a sink reports; `None`
/// for the database's own events.
fn unit_or_lab(f: &mut fmt::Formatter<'_>, kind: &EventKind) -> Option<fmt::Result> {
    Some(match kind {
        EventKind::Started { pid } => write!(f, "started (pid {pid})"),
        EventKind::Adopted { pid } => write!(f, "found running from an earlier daemon (pid {pid})"),
        EventKind::Ready => f.write_str("ready"),
        EventKind::NotReady => f.write_str("not ready"),
        EventKind::Exited { exit, expected } => {
            write!(f, "{exit}{}", if *expected { "" } else { " (unexpected)" })
        }
        EventKind::Restarting { attempt, after_ms } => {
            write!(f, "restart #{attempt} in {after_ms} ms")
        }
        EventKind::GaveUp { restarts } => write!(f, "gave up after {restarts} restarts"),
        EventKind::ProbeFailed { probe, message } => write!(f, "{probe} probe failed: {message}"),
        EventKind::CrashLoop { restarts } => {
            write!(
                f,
                "crash loop: failed {restarts} restarts in a row without running stably"
            )
        }
        EventKind::Lab { phase } => write!(f, "lab {phase}"),
        EventKind::Fault { fault, target, phase } => write!(f, "fault {fault} on {target}: {phase}"),
        EventKind::Hum { phase } => write!(f, "hum {phase}"),
        EventKind::Alert {
            alert,
            target,
            delivered,
            detail,
        } => {
            let how = if *delivered { "delivered" } else { "not delivered" };
            write!(f, "alert {alert} via {target}: {how} ({detail})")
        }
        EventKind::SinkFailed { sink, error } => write!(f, "sink {sink} failing: {error}"),
        EventKind::SinkRecovered { sink } => write!(f, "sink {sink} writing again"),
        _ => return None,
    })
}

/// What the database reports: replication, DDL, verdicts, locks and its
/// log; `None` for the others.
fn database(f: &mut fmt::Formatter<'_>, kind: &EventKind) -> Option<fmt::Result> {
    Some(match kind {
        EventKind::ReplicationError {
            subscription,
            table,
            message,
            advice,
            ..
        } => {
            let on = table.as_ref().map(|t| format!(" on {t}")).unwrap_or_default();
            write!(
                f,
                "subscription {subscription} failed{on}: {message} What to do: {advice}"
            )
        }
        EventKind::ReplicationRecovered { subscription } => {
            write!(f, "subscription {subscription} streams again")
        }
        EventKind::Migration { phase, file } => write!(f, "migration {file}: {phase}"),
        EventKind::DdlApplied {
            subscriber,
            statement,
        } => write!(f, "DDL applied on {subscriber}: {statement}"),
        EventKind::DdlFailed {
            subscriber,
            statement,
            message,
        } => write!(f, "DDL failed on {subscriber}: {statement}: {message}"),
        EventKind::Verdict { command, ok, summary } => {
            let verdict = if *ok { "ok" } else { "FAILED" };
            write!(f, "{command} verdict: {verdict} ({summary})")
        }
        EventKind::Deadlock { statements, .. } => {
            write!(f, "deadlock between: {}", statements.join(" | "))
        }
        EventKind::LockWait {
            blocking_pid,
            wait_ms,
            statement,
        } => {
            let by = blocking_pid
                .map(|p| format!(" behind pid {p}"))
                .unwrap_or_default();
            write!(f, "lock wait of {wait_ms} ms{by}: {statement}")
        }
        EventKind::SlowStatement { query, duration_ms } => {
            write!(f, "slow statement ({duration_ms} ms): {query}")
        }
        EventKind::LogError {
            severity,
            sqlstate,
            message,
        } => write!(f, "{severity} {sqlstate}: {message}"),
        // Listed, not `_`: a new kind must be given its text in one group.
        EventKind::Started { .. }
        | EventKind::Adopted { .. }
        | EventKind::Ready
        | EventKind::NotReady
        | EventKind::Exited { .. }
        | EventKind::Restarting { .. }
        | EventKind::GaveUp { .. }
        | EventKind::ProbeFailed { .. }
        | EventKind::CrashLoop { .. }
        | EventKind::Lab { .. }
        | EventKind::Fault { .. }
        | EventKind::Hum { .. }
        | EventKind::Alert { .. }
        | EventKind::SinkFailed { .. }
        | EventKind::SinkRecovered { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_describes_code_and_signal() {
        let by_code = Exit {
            code: Some(1),
            signal: None,
        };
        let by_signal = Exit {
            code: None,
            signal: Some(9),
        };
        assert_eq!(by_code.to_string(), "exit code 1");
        assert_eq!(by_signal.to_string(), "killed by signal 9 (SIGKILL)");
        assert!(!by_code.success());
    }

    #[test]
    fn event_round_trips_as_one_flat_json_object() {
        let e = Event::now(
            "publisher",
            EventKind::Restarting {
                attempt: 2,
                after_ms: 400,
            },
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""kind":"restarting""#), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn probe_failures_and_crash_loops_serialize_with_their_names() {
        let kinds = [
            EventKind::ProbeFailed {
                probe: "live".into(),
                message: "http://127.0.0.1:1/: HTTP 500".into(),
            },
            EventKind::CrashLoop { restarts: 5 },
            EventKind::Alert {
                alert: "crash_loop".into(),
                target: "webhook".into(),
                delivered: false,
                detail: "127.0.0.1:1: connection refused".into(),
            },
            EventKind::SinkFailed {
                sink: "influx".into(),
                error: "database not found: \"lab\"".into(),
            },
            EventKind::SinkRecovered {
                sink: "influx".into(),
            },
            EventKind::ReplicationError {
                subscription: "dispatch_branch1".into(),
                table: Some("public.orders".into()),
                message: "duplicate key value violates unique constraint \"orders_pkey\" (23505).".into(),
                sqlstate: Some("23505".into()),
                advice: "delete the row on branch1".into(),
            },
            EventKind::ReplicationRecovered {
                subscription: "dispatch_branch1".into(),
            },
            EventKind::Migration {
                phase: "finished".into(),
                file: "add_index.sql".into(),
            },
            EventKind::Verdict {
                command: "verify".into(),
                ok: true,
                summary: "1 replication converged".into(),
            },
        ];
        for kind in kinds {
            let e = Event::now("dispatcher", kind);
            let json = serde_json::to_string(&e).unwrap();
            assert!(json.contains(&format!(r#""kind":"{}""#, e.kind.name())), "{json}");
            assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        }
        let e = Event::now("dispatcher", EventKind::CrashLoop { restarts: 5 });
        assert_eq!(
            e.to_string(),
            "dispatcher: crash loop: failed 5 restarts in a row without running stably"
        );
    }

    #[test]
    fn sink_events_read_as_flat_json_with_the_sink_and_its_error() {
        let json =
            r#"{"ts_ns":1,"unit":"shop","kind":"sink_failed","sink":"influx","error":"database not found"}"#;
        let e: Event = serde_json::from_str(json).unwrap();
        assert_eq!(e.to_string(), "shop: sink influx failing: database not found");
        assert_eq!(serde_json::to_string(&e).unwrap(), json);
    }
}
