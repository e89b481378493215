//! The dashboard's log view: what the nodes' logs said that matters (the
//! log reader's events: errors by SQLSTATE, deadlocks, lock waits, slow
//! statements), filtered by node, level and text, newest first.
//!
//! It reads the events from the embedded store rather than the raw log
//! files: the log reader has already parsed, classified and rate-limited
//! them (at most one per SQLSTATE or query per minute; the `pg_log`
//! series count every line), and the web crate knows no file layout.

use model::{Event, EventKind};
use serde::Serialize;

/// Most lines one request answers.
pub const MAX_LINES: usize = 500;

/// One line of the log view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Milliseconds since the epoch (the page's unit).
    pub ms: i64,
    pub node: String,
    /// `panic`, `fatal` or `error` (as the server logged it), `log` for
    /// lock waits and slow statements.
    pub level: String,
    /// The event kind (`log_error`, `deadlock`, `lock_wait`, `slow_statement`).
    pub kind: &'static str,
    pub text: String,
}

/// What to keep: each filter empty keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub node: Option<String>,
    pub level: Option<String>,
    /// Case-insensitive substring of the text.
    pub grep: Option<String>,
    pub limit: usize,
}

/// The log lines among `events` that pass `filter`, newest first, at most
/// `filter.limit` (and [`MAX_LINES`]).
pub fn lines(events: &[Event], filter: &Filter) -> Vec<LogLine> {
    let grep = filter.grep.as_deref().map(str::to_lowercase);
    let wanted =
        |v: &Option<String>, actual: &str| v.as_deref().is_none_or(|v| v.eq_ignore_ascii_case(actual));
    events
        .iter()
        .rev()
        .filter_map(line)
        .filter(|l| wanted(&filter.node, &l.node) && wanted(&filter.level, &l.level))
        .filter(|l| grep.as_deref().is_none_or(|g| l.text.to_lowercase().contains(g)))
        .take(filter.limit.clamp(1, MAX_LINES))
        .collect()
}

/// The line an event from a node's log makes; `None` for other events.
fn line(e: &Event) -> Option<LogLine> {
    let level = match &e.kind {
        EventKind::LogError { severity, .. } => severity.to_lowercase(),
        EventKind::Deadlock { .. } => "error".into(),
        EventKind::LockWait { .. } | EventKind::SlowStatement { .. } => "log".into(),
        _ => return None,
    };
    let full = e.to_string();
    let text = full
        .strip_prefix(&format!("{}: ", e.unit))
        .unwrap_or(&full)
        .to_string();
    Some(LogLine {
        ms: e.ts_ns.div_euclid(1_000_000),
        node: e.unit.clone(),
        level,
        kind: e.kind.name(),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ns: i64, unit: &str, kind: EventKind) -> Event {
        Event {
            ts_ns,
            unit: unit.into(),
            kind,
        }
    }

    #[test]
    fn only_log_events_pass_filtered_newest_first() {
        let error = |code: &str, msg: &str| EventKind::LogError {
            severity: "ERROR".into(),
            sqlstate: code.into(),
            message: msg.into(),
        };
        let events = [
            ev(1_000_000, "a", error("22012", "division by zero")),
            ev(2_000_000, "a", EventKind::Ready),
            ev(3_000_000, "b", error("23505", "duplicate key value")),
            ev(
                4_000_000,
                "a",
                EventKind::SlowStatement {
                    query: "SELECT pg_sleep($1)".into(),
                    duration_ms: 300,
                },
            ),
        ];
        let all = lines(
            &events,
            &Filter {
                limit: 10,
                ..Filter::default()
            },
        );
        assert_eq!(all.iter().map(|l| l.ms).collect::<Vec<_>>(), [4, 3, 1]);
        assert_eq!(all[1].text, "ERROR 23505: duplicate key value");
        assert_eq!(all[0].level, "log");
        let f = |node: Option<&str>, level: Option<&str>, grep: Option<&str>| Filter {
            node: node.map(Into::into),
            level: level.map(Into::into),
            grep: grep.map(Into::into),
            limit: 10,
        };
        assert_eq!(lines(&events, &f(Some("a"), None, None)).len(), 2);
        assert_eq!(lines(&events, &f(None, Some("error"), None)).len(), 2);
        let zero = lines(&events, &f(Some("a"), Some("ERROR"), Some("DIVISION")));
        assert_eq!(zero.len(), 1);
        assert_eq!(zero[0].kind, "log_error");
        assert!(lines(&events, &f(Some("b"), None, Some("division"))).is_empty());
        assert_eq!(
            lines(
                &events,
                &Filter {
                    limit: 1,
                    ..Filter::default()
                }
            )
            .len(),
            1
        );
    }
}
