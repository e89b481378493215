//! Applying the change: a script's statements (in one transaction when all
//! of them can run in one, else statement by statement), or the user's own
//! command; with `lock_timeout` and retries on 55P03 lock_not_available.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::error::{ErrorPosition, SqlState};

use super::locks::Held;

/// How one try went.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attempt {
    pub(crate) attempt: u32,
    pub(crate) ok: bool,
    pub(crate) ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// What applying did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Applied {
    pub(crate) ok: bool,
    /// "one transaction", "statement by statement (...)" or "command".
    pub(crate) mode: String,
    pub(crate) statements: usize,
    pub(crate) attempts: Vec<Attempt>,
    /// The failure, located (`FILE:LINE:COL: ...`) for a script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Relation locks the script's transaction held just before COMMIT.
    #[serde(skip)]
    pub(crate) held: BTreeSet<Held>,
}

/// What a retry loop needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub(crate) lock_timeout: Option<Duration>,
    pub(crate) retries: u32,
}

/// The first statement that cannot run inside a transaction block, said in words.
fn outside_transaction(statements: &[sqlscript::Statement<'_>]) -> Option<String> {
    statements.iter().find_map(|s| {
        let words: Vec<String> = s
            .sql
            .split_whitespace()
            .take(6)
            .map(str::to_ascii_lowercase)
            .collect();
        let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
        let concurrently =
            matches!(w(0), "create" | "drop" | "reindex") && words.iter().any(|x| x == "concurrently");
        let never = matches!(w(0), "vacuum")
            || (matches!(w(0), "create" | "drop") && matches!(w(1), "database" | "tablespace"))
            || (matches!(w(0), "create" | "alter" | "drop") && w(1) == "subscription")
            || (w(0) == "alter" && w(1) == "system");
        (concurrently || never)
            .then(|| format!("line {}: {} cannot run in a transaction", s.line, s.summary()))
    })
}

/// Applies the script `text` (read from `path`) on `client`, the migration's session.
pub(crate) async fn script(client: &Client, path: &Path, text: &str, retry: Retry) -> Applied {
    let statements = match sqlscript::split(text) {
        Ok(s) => s,
        Err(e) => return failed(format!("{}:{e}; {}", path.display(), e.help())),
    };
    let statements: Vec<_> = statements
        .into_iter()
        .filter(|s| s.kind != sqlscript::Kind::Transaction)
        .collect();
    if let Some(s) = statements.iter().find(|s| s.copy_data.is_some()) {
        return failed(format!(
            "{}:{}:{}: COPY ... FROM stdin in a migration file is not supported; run it with `prodhome migrate -- psql -f {}`",
            path.display(),
            s.line,
            s.column,
            path.display()
        ));
    }
    if let Some(ms) = retry.lock_timeout.map(|d| d.as_millis())
        && let Err(e) = client.batch_execute(&format!("SET lock_timeout = {ms}")).await
    {
        return failed(format!("setting lock_timeout: {e}"));
    }
    let mut applied = match outside_transaction(&statements) {
        None => in_transaction(client, path, &statements, retry).await,
        Some(why) => one_by_one(client, path, &statements, retry, why).await,
    };
    applied.statements = statements.len();
    applied
}

fn failed(error: String) -> Applied {
    Applied {
        ok: false,
        mode: "not started".into(),
        error: Some(error),
        ..Applied::default()
    }
}

async fn in_transaction(
    client: &Client,
    path: &Path,
    statements: &[sqlscript::Statement<'_>],
    retry: Retry,
) -> Applied {
    let mut applied = Applied {
        mode: "one transaction".into(),
        ..Applied::default()
    };
    for attempt in 1..=retry.retries + 1 {
        let started = Instant::now();
        let result = transaction(client, statements, &mut applied.held).await;
        let ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(()) => {
                applied.attempts.push(ok(attempt, ms));
                applied.ok = true;
                return applied;
            }
            Err((i, e)) => {
                let _ = client.batch_execute("ROLLBACK").await;
                let error = locate(path, statements.get(i), &e);
                applied.attempts.push(err(attempt, ms, &e, &error));
                if !lock_timed_out(&e) || attempt > retry.retries {
                    applied.error = Some(format!(
                        "{error}; the transaction was rolled back, so the lab is as it was"
                    ));
                    return applied;
                }
                backoff(attempt).await;
            }
        }
    }
    applied
}

/// BEGIN, every statement, the locks held, COMMIT; on failure the index of
/// the statement that failed (`len` for COMMIT itself).
async fn transaction(
    client: &Client,
    statements: &[sqlscript::Statement<'_>],
    held: &mut BTreeSet<Held>,
) -> Result<(), (usize, tokio_postgres::Error)> {
    client.batch_execute("BEGIN").await.map_err(|e| (0, e))?;
    for (i, s) in statements.iter().enumerate() {
        client.batch_execute(s.sql).await.map_err(|e| (i, e))?;
    }
    // Exact, unlike sampling: every lock the transaction took is still held.
    let rows = client
        .query(
            "SELECT l.relation::regclass::text, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
              WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted \
                AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)",
            &[],
        )
        .await
        .map_err(|e| (statements.len(), e))?;
    held.extend(rows.iter().map(|r| Held {
        table: r.get(0),
        mode: r.get(1),
    }));
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| (statements.len(), e))
}

async fn one_by_one(
    client: &Client,
    path: &Path,
    statements: &[sqlscript::Statement<'_>],
    retry: Retry,
    why: String,
) -> Applied {
    let mut applied = Applied {
        mode: format!("statement by statement ({why})"),
        ..Applied::default()
    };
    let mut attempt = 0;
    for (i, s) in statements.iter().enumerate() {
        for tries in 1..=retry.retries + 1 {
            attempt += 1;
            let started = Instant::now();
            let result = client.batch_execute(s.sql).await;
            let ms = started.elapsed().as_millis() as u64;
            let Err(e) = result else {
                applied.attempts.push(ok(attempt, ms));
                break;
            };
            let error = locate(path, Some(s), &e);
            applied.attempts.push(err(attempt, ms, &e, &error));
            if !lock_timed_out(&e) || tries > retry.retries {
                let kept = match i {
                    0 => "nothing was applied".to_string(),
                    n => format!(
                        "the {n} statement(s) before it ran outside a transaction and stay applied: undo them by hand"
                    ),
                };
                applied.error = Some(format!("{error}; {kept}"));
                return applied;
            }
            backoff(tries).await;
        }
    }
    applied.ok = true;
    applied
}

fn ok(attempt: u32, ms: u64) -> Attempt {
    Attempt {
        attempt,
        ok: true,
        ms,
        sqlstate: None,
        error: None,
    }
}

fn err(attempt: u32, ms: u64, e: &tokio_postgres::Error, error: &str) -> Attempt {
    Attempt {
        attempt,
        ok: false,
        ms,
        sqlstate: e.code().map(|c| c.code().to_string()),
        error: Some(error.to_string()),
    }
}

fn lock_timed_out(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// A short pause between attempts, longer each time, so the sessions the
/// lock queue held up get through first.
async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))).await;
}

/// `FILE:LINE:COL: ERROR: message (SQLSTATE X) in `statement``, the line
/// and column of the error's position when the server gives one.
fn locate(path: &Path, statement: Option<&sqlscript::Statement<'_>>, e: &tokio_postgres::Error) -> String {
    let (message, code) = match e.as_db_error() {
        Some(db) => (db.message().to_string(), db.code().code().to_string()),
        None => (e.to_string(), String::new()),
    };
    let code = if code.is_empty() {
        String::new()
    } else {
        format!(" (SQLSTATE {code})")
    };
    let Some(s) = statement else {
        return format!("{}: ERROR: {message}{code}", path.display());
    };
    let offset = match e.as_db_error().and_then(|db| db.position()) {
        Some(ErrorPosition::Original(p)) => Some(*p as usize),
        _ => None,
    };
    let (line, column) = match offset {
        Some(p) => position(s, p.saturating_sub(1)),
        None => (s.line, s.column),
    };
    format!(
        "{}:{line}:{column}: ERROR: {message}{code} in `{}`",
        path.display(),
        s.summary()
    )
}

/// The file's line and column of the `chars`-th char of the statement.
fn position(s: &sqlscript::Statement<'_>, chars: usize) -> (usize, usize) {
    let before: String = s.sql.chars().take(chars).collect();
    match before.rfind('\n') {
        None => (s.line, s.column + before.chars().count()),
        Some(nl) => (
            s.line + before.matches('\n').count(),
            before[nl + 1..].chars().count() + 1,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_position_becomes_the_files_line_and_column() {
        let text = "create table a (id int);\n\ncreate table b (\n  id int,\n  x nosuchtype\n);\n";
        let statements = sqlscript::split(text).unwrap();
        let b = &statements[1];
        assert_eq!((b.line, b.column), (3, 1));
        let at = b.sql.find("nosuchtype").unwrap();
        assert_eq!(position(b, at), (5, 5));
        assert_eq!(position(b, 0), (3, 1));
    }

    #[test]
    fn concurrently_and_vacuum_cannot_run_in_a_transaction() {
        let plain = sqlscript::split("create index i on t (a);").unwrap();
        assert_eq!(outside_transaction(&plain), None);
        let text = "alter table t add column b int;\ncreate index concurrently i on t (a);";
        let why = outside_transaction(&sqlscript::split(text).unwrap()).unwrap();
        assert!(why.starts_with("line 2: create index concurrently"), "{why}");
    }
}
