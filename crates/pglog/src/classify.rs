//! What a log message is about, read from its SQLSTATE and (where Postgres
//! gives nothing better) its English text (`lc_messages = 'C'`, which
//! prodhome sets on every node).

use crate::normalize::normalize;
use crate::record::Record;

/// A message the tally counts beyond its severity and SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// `deadlock detected` (40P01): the statements of the processes in the
    /// cycle, from the DETAIL's `Process N: …` lines.
    Deadlock { statements: Vec<String>, detail: String },
    /// `process N still waiting for … after X ms` (log_lock_waits, past
    /// deadlock_timeout), or `acquired … after X ms` (`waiting` false).
    LockWait {
        blocking_pid: Option<i64>,
        wait_ms: f64,
        statement: String,
        waiting: bool,
    },
    /// `checkpoint complete` (or `restartpoint complete`).
    Checkpoint {
        write_ms: f64,
        sync_ms: f64,
        buffers: i64,
    },
    /// `automatic vacuum|analyze of table "db.schema.table"`.
    Autovacuum { table: String, duration_ms: f64 },
    /// A FATAL of a connection that never became a session: `auth`
    /// (SQLSTATE class 28) or `other`.
    ConnectionFailure { kind: &'static str },
    /// `duration: X ms  statement: …` (log_min_duration_statement).
    SlowStatement { query: String, duration_ms: f64 },
    /// A logical replication worker started (`restart` once it ran before)
    /// or failed.
    ReplicationWorker { failed: bool },
    /// Nothing beyond its severity and SQLSTATE.
    Other,
}

/// Classifies one record.
pub fn classify(r: &Record) -> Class {
    let msg = r.message.as_str();
    let code = r.sqlstate();
    if code == "40P01" {
        return deadlock(r);
    }
    if r.error_severity == "LOG" {
        if let Some(c) = lock_wait(r)
            .or_else(|| checkpoint(msg))
            .or_else(|| autovacuum(msg))
        {
            return c;
        }
        if let Some(c) = slow_statement(msg) {
            return c;
        }
        if msg.starts_with("logical replication") && msg.ends_with("has started") {
            return Class::ReplicationWorker { failed: false };
        }
    }
    let replication_worker = r
        .backend_type
        .as_deref()
        .is_some_and(|b| b.starts_with("logical replication"));
    if r.is_error() && replication_worker {
        return Class::ReplicationWorker { failed: true };
    }
    if r.error_severity == "FATAL" && r.backend_type.as_deref() == Some("client backend") {
        if code.starts_with("28") {
            return Class::ConnectionFailure { kind: "auth" };
        }
        if code.starts_with("08") || matches!(code, "57P03" | "3D000" | "53300") {
            return Class::ConnectionFailure { kind: "other" };
        }
    }
    Class::Other
}

fn deadlock(r: &Record) -> Class {
    let detail = r.detail.clone().unwrap_or_default();
    let statements = detail
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Process ")?;
            let (pid, stmt) = rest.split_once(": ")?;
            pid.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| stmt.trim().to_string())
        })
        .collect();
    Class::Deadlock { statements, detail }
}

fn lock_wait(r: &Record) -> Option<Class> {
    let msg = r.message.as_str();
    let rest = msg.strip_prefix("process ")?;
    let waiting = rest.contains(" still waiting for ");
    if !waiting && !rest.contains(" acquired ") {
        return None;
    }
    let (_, after) = rest.rsplit_once(" after ")?;
    let wait_ms = number_before(after, " ms")?;
    // DETAIL: "Process holding the lock: 123. Wait queue: 456." or
    // "Processes holding the lock: 123, 124. Wait queue: …".
    let blocking_pid = r.detail.as_deref().and_then(|d| {
        let (_, holders) = d.split_once("holding the lock: ")?;
        let first: String = holders.chars().take_while(char::is_ascii_digit).collect();
        first.parse().ok()
    });
    Some(Class::LockWait {
        blocking_pid,
        wait_ms,
        statement: r.statement.clone().unwrap_or_default(),
        waiting,
    })
}

fn checkpoint(msg: &str) -> Option<Class> {
    if !(msg.starts_with("checkpoint complete:") || msg.starts_with("restartpoint complete:")) {
        return None;
    }
    let buffers = msg
        .split_once("wrote ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let secs = |key: &str| {
        msg.split_once(key)
            .and_then(|(_, r)| number_before(r, " s"))
            .map_or(0.0, |s| s * 1000.0)
    };
    Some(Class::Checkpoint {
        write_ms: secs("write="),
        sync_ms: secs("sync="),
        buffers,
    })
}

fn autovacuum(msg: &str) -> Option<Class> {
    let rest = msg
        .strip_prefix("automatic vacuum of table \"")
        .or_else(|| msg.strip_prefix("automatic aggressive vacuum of table \""))
        .or_else(|| msg.strip_prefix("automatic analyze of table \""))?;
    let (table, _) = rest.split_once('"')?;
    let duration_ms = msg
        .rsplit_once("elapsed: ")
        .and_then(|(_, r)| number_before(r, " s"))
        .map_or(0.0, |s| s * 1000.0);
    Some(Class::Autovacuum {
        table: table.to_string(),
        duration_ms,
    })
}

fn slow_statement(msg: &str) -> Option<Class> {
    let rest = msg.strip_prefix("duration: ")?;
    let duration_ms = number_before(rest, " ms")?;
    let (_, text) = rest.split_once(" ms  ")?;
    let query = if let Some(q) = text.strip_prefix("statement: ") {
        q
    } else if let Some(q) = text.strip_prefix("execute ") {
        q.split_once(": ").map(|(_, q)| q)?
    } else {
        return None; // parse/bind steps: the execute line counts the query
    };
    Some(Class::SlowStatement {
        query: normalize(query),
        duration_ms,
    })
}

/// The number `text` starts with, ended by `unit`.
fn number_before(text: &str, unit: &str) -> Option<f64> {
    text.split_once(unit)?.0.trim().parse().ok()
}

#[cfg(test)]
mod tests;
