//! Why a subscription's worker failed, read from the subscriber's server
//! log: Postgres counts the failures (`pg_stat_subscription_stats`) but
//! keeps the reason only in the log. A worker announces itself with a LOG
//! line naming its subscription (and table), then its ERROR (with DETAIL
//! and CONTEXT) carries the same pid. Both the wait for an initial sync
//! (`up`) and the daemon's watcher of running links read failures here.
//!
//! The log is the node's jsonlog (see [`crate::server_log_dir`]), where
//! each error carries its real SQLSTATE; a text log in the stderr format
//! (a node an older prodhome configured) is read as before.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last failure of one subscription's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerError {
    /// The table a table-sync worker was copying (unqualified, as the log
    /// names it); `None` for the apply worker.
    pub table: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    /// What the apply worker was doing (`processing remote data for
    /// replication origin … for replication target relation "public.t" in
    /// transaction 735, finished at 0/1560F10`).
    pub context: Option<String>,
    /// The SQLSTATE the server logged (jsonlog); `None` from a text log.
    pub sqlstate: Option<String>,
}

impl WorkerError {
    /// The SQLSTATE of the failures that no retry can cure: the logged
    /// one when the log has it, else (a text log has no SQLSTATE) known by
    /// its English text (lc_messages = 'C').
    pub fn lasting_code(&self) -> Option<&'static str> {
        const LASTING: &[&str] = &[
            "23505", "23503", "23502", "23514", "55000", "22P02", "42501", "42P01", "42703",
        ];
        if let Some(code) = self.sqlstate.as_deref() {
            return LASTING.iter().find(|c| **c == code).copied();
        }
        const KNOWN: &[(&str, &str)] = &[
            ("duplicate key value violates unique constraint", "23505"),
            ("violates foreign key constraint", "23503"),
            ("violates not-null constraint", "23502"),
            ("violates check constraint", "23514"),
            ("is missing replicated column", "55000"),
            ("logical replication target relation", "55000"),
            ("invalid input syntax", "22P02"),
            ("permission denied", "42501"),
        ];
        KNOWN
            .iter()
            .find(|(text, _)| self.message.contains(text))
            .map(|(_, code)| *code)
    }

    /// A lost or refused connection to the publisher, or the server
    /// stopping the worker: the link's own state (`disconnected`) and the
    /// fault or restart that caused it say more than the worker's error.
    pub fn is_transient(&self) -> bool {
        const TRANSIENT: &[&str] = &[
            "could not connect to the publisher",
            "could not receive data from WAL stream",
            "could not send data to WAL stream",
            "could not send end-of-streaming message",
            "server closed the connection unexpectedly",
            "terminating logical replication worker",
            "terminating connection due to",
            "the database system is",
            "is active for PID",
        ];
        TRANSIENT.iter().any(|text| self.message.contains(text))
    }

    /// The table the failure is about, schema-qualified when the apply
    /// worker's context or message names it.
    pub fn relation(&self) -> Option<String> {
        let named = |text: &str| {
            let (_, rest) = text.split_once("replication target relation \"")?;
            rest.split_once('"').map(|(rel, _)| rel.to_string())
        };
        self.context
            .as_deref()
            .and_then(named)
            .or_else(|| named(&self.message))
            .or_else(|| self.table.clone())
    }

    /// The remote transaction's finish LSN, what `ALTER SUBSCRIPTION ...
    /// SKIP` takes.
    pub fn finish_lsn(&self) -> Option<&str> {
        let (_, rest) = self.context.as_deref()?.split_once("finished at ")?;
        let lsn = rest
            .split_whitespace()
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_hexdigit());
        (!lsn.is_empty()).then_some(lsn)
    }

    /// The message with its SQLSTATE and detail: `duplicate key … (23505).
    /// Key (id)=(7) already exists.`
    pub fn summary(&self) -> String {
        let code = self.lasting_code().map(|c| format!(" ({c})")).unwrap_or_default();
        let detail = self
            .detail
            .as_deref()
            .map(|d| format!(" {d}"))
            .unwrap_or_default();
        format!("{}{code}.{detail}", self.message)
    }

    /// What to do about a failure of `subscription` on `subscriber` (whose
    /// server log is `log`) while it applies changes.
    pub fn advice(&self, subscription: &str, subscriber: &str, log: &Path) -> String {
        let table = self.relation().unwrap_or_else(|| "the table".into());
        let psql = format!("prodhome psql {subscriber}");
        let skip = match self.finish_lsn() {
            Some(lsn) => format!("ALTER SUBSCRIPTION {subscription} SKIP (lsn = '{lsn}')"),
            None => format!("ALTER SUBSCRIPTION {subscription} SKIP (lsn = '<finished at, from the log>')"),
        };
        let log = log.display();
        match self.lasting_code() {
            Some("23505") => format!(
                "the subscriber already has that key: delete the row on {subscriber} ({psql}) or skip the \
                 transaction with {skip} on {subscriber}; see the log ({log})"
            ),
            Some("23503" | "23502" | "23514" | "22P02") => format!(
                "{table} on {subscriber} refuses the publisher's row: fix the row or the constraint on \
                 {subscriber} ({psql}), or skip the transaction with {skip}; see the log ({log})"
            ),
            Some("55000") => format!(
                "{table} on {subscriber} lacks what the publisher sends: create the table or column on the \
                 subscriber ({psql}) as the publisher has it; the worker retries by itself; see the log ({log})"
            ),
            Some("42501") => format!(
                "the subscription's owner on {subscriber} may not write {table}: GRANT it the privilege on \
                 {subscriber} ({psql}); see the log ({log})"
            ),
            _ => format!(
                "the worker retries by itself; if it keeps failing, fix the cause on {subscriber} ({psql}); \
                 see the log ({log})"
            ),
        }
    }
}

/// How much of the log's end is read: a worker's failure is recent.
const TAIL: u64 = 512 * 1024;

/// The last worker error of `subscription` on the node whose server logs
/// are in `log_dir` (jsonlog files), or, when there are none, in the text
/// log at `text_log`.
pub fn last_worker_error(log_dir: &Path, text_log: &Path, subscription: &str) -> Option<WorkerError> {
    match json_tail(log_dir) {
        Some(text) => last_error_in_json(&text, subscription),
        None => last_text_error(text_log, subscription),
    }
}

/// The last [`TAIL`] bytes of the newest jsonlog files, oldest first.
fn json_tail(dir: &Path) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    if files.is_empty() {
        return None;
    }
    files.sort();
    let mut parts = Vec::new();
    let mut left = TAIL;
    for path in files.iter().rev() {
        let bytes = tail_of(path, left).unwrap_or_default();
        left = left.saturating_sub(bytes.len() as u64);
        parts.push(bytes);
        if left == 0 {
            break;
        }
    }
    parts.reverse();
    Some(String::from_utf8_lossy(&parts.concat()).into_owned())
}

fn tail_of(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The same reading as [`last_error_in`], of jsonlog records.
pub(crate) fn last_error_in_json(log: &str, subscription: &str) -> Option<WorkerError> {
    let started = format!("worker for subscription \"{subscription}\"");
    let mut workers: HashMap<i64, Option<String>> = HashMap::new();
    let mut last = None;
    for r in log.lines().filter_map(|l| pglog::Record::parse(l).ok()) {
        let pid = r.pid.unwrap_or(0);
        if r.error_severity == "LOG" && r.message.contains(&started) {
            workers.insert(pid, started_table(&r.message));
        } else if matches!(r.error_severity.as_str(), "ERROR" | "FATAL")
            && let Some(table) = workers.get(&pid)
        {
            last = Some(WorkerError {
                table: table.clone(),
                sqlstate: r.state_code.clone(),
                message: r.message,
                detail: r.detail,
                context: r.context,
            });
        }
    }
    last
}

fn started_table(text: &str) -> Option<String> {
    text.split_once(", table \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(table, _)| table.to_string())
}

fn last_text_error(path: &Path, subscription: &str) -> Option<WorkerError> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    last_error_in(&String::from_utf8_lossy(&bytes), subscription)
}

/// One log line split after its `%m [%p] ` prefix.
struct Line<'a> {
    pid: &'a str,
    level: &'a str,
    text: &'a str,
}

fn parse(line: &str) -> Option<Line<'_>> {
    let open = line.find(" [")?;
    let rest = &line[open + 2..];
    let close = rest.find("] ")?;
    let pid = &rest[..close];
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut body = &rest[close + 2..];
    // Session processes print `user@db ` before the level; workers do not.
    if let Some((first, after)) = body.split_once(' ')
        && first.contains('@')
        && !first.ends_with(':')
    {
        body = after;
    }
    let (level, text) = body.split_once(":  ")?;
    Some(Line { pid, level, text })
}

pub(crate) fn last_error_in(log: &str, subscription: &str) -> Option<WorkerError> {
    let started = format!("worker for subscription \"{subscription}\"");
    // pid → the table it syncs (None: the apply worker).
    let mut workers: HashMap<&str, Option<String>> = HashMap::new();
    let mut last: Option<WorkerError> = None;
    let mut last_pid = "";
    for line in log.lines().filter_map(parse) {
        match line.level {
            "LOG" if line.text.contains(&started) => {
                workers.insert(line.pid, started_table(line.text));
            }
            "ERROR" | "FATAL" => {
                if let Some(table) = workers.get(line.pid) {
                    last = Some(WorkerError {
                        table: table.clone(),
                        message: line.text.to_string(),
                        detail: None,
                        context: None,
                        sqlstate: None,
                    });
                    last_pid = line.pid;
                }
            }
            "DETAIL" if line.pid == last_pid => {
                if let Some(error) = last.as_mut().filter(|e| e.detail.is_none()) {
                    error.detail = Some(line.text.to_string());
                }
            }
            "CONTEXT" if line.pid == last_pid => {
                if let Some(error) = last.as_mut().filter(|e| e.context.is_none()) {
                    error.context = Some(line.text.to_string());
                }
            }
            _ => {}
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-01 10:00:00.100 UTC [200] LOG:  logical replication apply worker for subscription \"stock_a\" has started
2026-12-01 10:00:00.120 UTC [201] LOG:  logical replication table synchronization worker for subscription \"stock_a\", table \"lots\" has started
2026-12-01 10:00:00.125 UTC [202] LOG:  logical replication table synchronization worker for subscription \"other\", table \"lots\" has started
2026-12-01 10:00:00.130 UTC [202] ERROR:  not ours
2026-12-01 10:00:00.131 UTC [300] postgres@postgres ERROR:  relation \"x\" does not exist at character 15
2026-12-01 10:00:00.140 UTC [201] ERROR:  duplicate key value violates unique constraint \"lots_pkey\"
2026-12-01 10:00:00.140 UTC [201] DETAIL:  Key (id)=(7) already exists.
2026-12-01 10:00:00.140 UTC [201] CONTEXT:  COPY lots, line 1
2026-12-01 10:00:00.150 UTC [100] LOG:  background worker \"logical replication worker\" (PID 201) exited with exit code 1
";

    #[test]
    fn the_last_error_of_the_subscriptions_own_workers_with_its_detail() {
        let error = last_error_in(LOG, "stock_a").unwrap();
        assert_eq!(error.table.as_deref(), Some("lots"));
        assert_eq!(
            error.message,
            "duplicate key value violates unique constraint \"lots_pkey\""
        );
        assert_eq!(error.detail.as_deref(), Some("Key (id)=(7) already exists."));
        assert_eq!(error.lasting_code(), Some("23505"));
    }

    #[test]
    fn other_subscriptions_and_sessions_do_not_count() {
        assert_eq!(last_error_in(LOG, "stock_b"), None);
        let apply = format!(
            "{LOG}2026-12-01 10:00:01.000 UTC [200] ERROR:  logical replication target relation \"public.lots\" is missing replicated column: \"c\"\n"
        );
        let error = last_error_in(&apply, "stock_a").unwrap();
        assert_eq!(error.table, None);
        assert_eq!(error.detail, None);
        assert_eq!(error.lasting_code(), Some("55000"));
        assert_eq!(error.relation().as_deref(), Some("public.lots"));
    }

    #[test]
    fn an_apply_conflict_names_its_table_and_the_lsn_to_skip() {
        let apply = format!(
            "{LOG}2026-12-01 10:00:02.000 UTC [210] LOG:  logical replication apply worker for subscription \"stock_a\" has started
2026-12-01 10:00:02.010 UTC [210] ERROR:  duplicate key value violates unique constraint \"lots_pkey\"
2026-12-01 10:00:02.010 UTC [210] DETAIL:  Key (id)=(7) already exists.
2026-12-01 10:00:02.010 UTC [210] CONTEXT:  processing remote data for replication origin \"pg_16395\" during message type \"INSERT\" for replication target relation \"public.lots\" in transaction 735, finished at 0/1560F10
"
        );
        let error = last_error_in(&apply, "stock_a").unwrap();
        assert_eq!(error.table, None);
        assert_eq!(error.relation().as_deref(), Some("public.lots"));
        assert_eq!(error.finish_lsn(), Some("0/1560F10"));
        assert_eq!(
            error.summary(),
            "duplicate key value violates unique constraint \"lots_pkey\" (23505). Key (id)=(7) already exists."
        );
        let advice = error.advice("stock_a", "mirror_a", Path::new("/s/mirror_a.log"));
        for want in [
            "delete the row on mirror_a (prodhome psql mirror_a)",
            "ALTER SUBSCRIPTION stock_a SKIP (lsn = '0/1560F10')",
            "/s/mirror_a.log",
        ] {
            assert!(advice.contains(want), "{want:?} in {advice}");
        }
    }

    #[test]
    fn a_sync_workers_copy_context_is_no_relation_and_no_lsn() {
        let error = last_error_in(LOG, "stock_a").unwrap();
        assert_eq!(error.context.as_deref(), Some("COPY lots, line 1"));
        assert_eq!(error.relation().as_deref(), Some("lots"));
        assert_eq!(error.finish_lsn(), None);
        assert!(!error.is_transient());
    }

    #[test]
    fn the_jsonlog_gives_the_same_reading_with_the_real_sqlstate() {
        let log = concat!(
            r#"{"timestamp":"2026-12-01 10:00:00.100 UTC","pid":201,"error_severity":"LOG","state_code":"00000","message":"logical replication table synchronization worker for subscription \"stock_a\", table \"lots\" has started","backend_type":"logical replication worker"}"#,
            "\n",
            r#"{"timestamp":"2026-12-01 10:00:00.110 UTC","pid":300,"error_severity":"ERROR","state_code":"42P01","message":"relation \"x\" does not exist","backend_type":"client backend"}"#,
            "\n",
            r#"{"timestamp":"2026-12-01 10:00:00.140 UTC","pid":201,"error_severity":"ERROR","state_code":"23505","message":"duplicate key value violates unique constraint \"lots_pkey\"","detail":"Key (id)=(7) already exists.","context":"COPY lots, line 1","backend_type":"logical replication worker"}"#,
            "\n",
        );
        let error = last_error_in_json(log, "stock_a").unwrap();
        assert_eq!(error.table.as_deref(), Some("lots"));
        assert_eq!(error.sqlstate.as_deref(), Some("23505"));
        assert_eq!(error.lasting_code(), Some("23505"));
        assert_eq!(error.detail.as_deref(), Some("Key (id)=(7) already exists."));
        assert_eq!(error.context.as_deref(), Some("COPY lots, line 1"));
        assert_eq!(last_error_in_json(log, "stock_b"), None);
        // A transient code (08006) is not lasting even if its text were.
        let cut = WorkerError {
            sqlstate: Some("08006".into()),
            ..error
        };
        assert_eq!(cut.lasting_code(), None);
    }

    #[test]
    fn a_lost_publisher_connection_is_transient() {
        let cut = format!(
            "{LOG}2026-12-01 10:00:03.000 UTC [200] ERROR:  could not receive data from WAL stream: server closed the connection unexpectedly\n"
        );
        let error = last_error_in(&cut, "stock_a").unwrap();
        assert!(error.is_transient(), "{error:?}");
        assert_eq!(error.lasting_code(), None);
    }
}
