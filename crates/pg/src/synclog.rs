//! Why a subscription's worker failed, read from the subscriber's server
//! log: Postgres counts the failures (`pg_stat_subscription_stats`) but
//! keeps the reason only in the log. A worker announces itself with a LOG
//! line naming its subscription (and table), then its ERROR and DETAIL lines
//! carry the same pid.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last failure of one subscription's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerError {
    /// The table a table-sync worker was copying (unqualified, as the log
    /// names it); `None` for the apply worker.
    pub(crate) table: Option<String>,
    pub(crate) message: String,
    pub(crate) detail: Option<String>,
}

impl WorkerError {
    /// The SQLSTATE of the failures that no retry can cure. The log line
    /// carries no SQLSTATE (the log_line_prefix has no %e), and messages are
    /// in English (lc_messages = 'C'), so the few that matter are known by
    /// their text.
    pub(crate) fn lasting_code(&self) -> Option<&'static str> {
        const KNOWN: &[(&str, &str)] = &[
            ("duplicate key value violates unique constraint", "23505"),
            ("violates foreign key constraint", "23503"),
            ("violates not-null constraint", "23502"),
            ("violates check constraint", "23514"),
            ("is missing replicated column", "55000"),
            ("invalid input syntax", "22P02"),
            ("permission denied", "42501"),
        ];
        KNOWN
            .iter()
            .find(|(text, _)| self.message.contains(text))
            .map(|(_, code)| *code)
    }
}

/// How much of the log's end is read: a worker's failure is recent.
const TAIL: u64 = 512 * 1024;

/// The last worker error of `subscription` in the log at `path`, if any.
pub(crate) fn last_error(path: &Path, subscription: &str) -> Option<WorkerError> {
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
                let table = line
                    .text
                    .split_once(", table \"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(table, _)| table.to_string());
                workers.insert(line.pid, table);
            }
            "ERROR" | "FATAL" => {
                if let Some(table) = workers.get(line.pid) {
                    last = Some(WorkerError {
                        table: table.clone(),
                        message: line.text.to_string(),
                        detail: None,
                    });
                    last_pid = line.pid;
                }
            }
            "DETAIL" if line.pid == last_pid => {
                if let Some(error) = last.as_mut().filter(|e| e.detail.is_none()) {
                    error.detail = Some(line.text.to_string());
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
    }
}
