//! `pg_statements`: the top statements by total execution time from
//! pg_stat_statements, so a person sees which queries hold the locks.
//!
//! Values are pg_stat_statements' own counters (since its last reset),
//! summed over users and databases per queryid; the ten with the most
//! total time are reported each cycle. The normalised text goes in the
//! `text` tag (whitespace collapsed, cut to [`TEXT_CHARS`]): one per
//! queryid, so it adds no series the `query` tag does not.
//!
//! A node without the extension (not preloaded, or not created) is not a
//! failure: the collector says so once on stderr, yields nothing and tries
//! again a minute later, so the lab can add the extension without a
//! restart of prodhome and no failure storm fills the store.

use std::time::{Duration, Instant};

use model::Point;

use super::Ctx;
use crate::failure::Failure;
use crate::session::Session;

/// Not prepared with the session: it fails on nodes without the extension.
const TOP: &str = "SELECT queryid, min(query), sum(calls)::bigint,
        sum(total_exec_time)::float8, sum(rows)::bigint
    FROM pg_stat_statements
    WHERE queryid IS NOT NULL
    GROUP BY queryid
    ORDER BY 4 DESC
    LIMIT 10";

/// How much of a statement's text the `text` tag keeps.
pub(crate) const TEXT_CHARS: usize = 120;

/// How long to wait before looking for the extension again.
const RETRY: Duration = Duration::from_secs(60);

/// SQLSTATEs that mean "no pg_stat_statements here": undefined table or
/// function, and "must be loaded via shared_preload_libraries".
const MISSING: &[&str] = &["42P01", "42883", "55000"];

#[derive(Default)]
pub(crate) struct State {
    /// When the extension was last found missing.
    missing_since: Option<Instant>,
    /// Whether the missing extension was said on stderr already.
    told: bool,
}

pub(crate) async fn collect(
    session: &Session,
    state: &mut State,
    ctx: Ctx<'_>,
) -> Result<Vec<Point>, Failure> {
    if state.missing_since.is_some_and(|t| t.elapsed() < RETRY) {
        return Ok(Vec::new());
    }
    let rows = match session.query_unprepared(TOP).await {
        Ok(rows) => rows,
        Err(f) if f.sqlstate.as_deref().is_some_and(|c| MISSING.contains(&c)) => {
            if !state.told {
                tracing::warn!(
                    "{}: no top statements ({}); preload and create pg_stat_statements to see them",
                    ctx.node,
                    f.message
                );
                state.told = true;
            }
            state.missing_since = Some(Instant::now());
            return Ok(Vec::new());
        }
        Err(f) => return Err(f),
    };
    state.missing_since = None;
    let mut points = Vec::with_capacity(rows.len());
    for row in rows {
        let queryid: i64 = row.get(0);
        let text: Option<String> = row.get(1);
        let calls: i64 = row.get::<_, Option<i64>>(2).unwrap_or(0);
        let total_ms: f64 = row.get::<_, Option<f64>>(3).unwrap_or(0.0);
        let rows_n: i64 = row.get::<_, Option<i64>>(4).unwrap_or(0);
        let mean_ms = if calls > 0 { total_ms / calls as f64 } else { 0.0 };
        points.push(
            ctx.point("pg_statements")
                .tag("query", short_id(queryid))
                .tag("text", short_text(text.as_deref().unwrap_or("")))
                .int("calls", calls)
                .float("total_ms", total_ms)
                .float("mean_ms", mean_ms)
                .int("rows", rows_n),
        );
    }
    Ok(points)
}

/// 12 hex digits of the queryid: short, and as unique as a lab needs.
pub(crate) fn short_id(queryid: i64) -> String {
    format!("{:012x}", (queryid as u64) & 0xffff_ffff_ffff)
}

/// One line (tags cannot hold a newline in line protocol), at most
/// [`TEXT_CHARS`] characters, `…` when cut.
pub(crate) fn short_text(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= TEXT_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(TEXT_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_one_line_and_cut_and_ids_are_short() {
        assert_eq!(short_text("SELECT\n  $1,\t$2"), "SELECT $1, $2");
        let long = "x ".repeat(200);
        let cut = short_text(&long);
        assert_eq!(cut.chars().count(), TEXT_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(short_id(-1), "ffffffffffff");
        assert_eq!(short_id(255), "0000000000ff");
    }
}
