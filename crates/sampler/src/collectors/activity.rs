//! `activity`: pg_stat_activity — client backends by state and wait event
//! type, how old the oldest transaction and query are, and how many
//! sessions sit idle in a transaction (holding locks and snapshots).

use std::collections::{BTreeMap, BTreeSet};

use model::Point;

use super::{Ctx, seconds};
use crate::failure::Failure;
use crate::session::Session;

const BACKENDS: &str = "SELECT coalesce(state, ''), coalesce(wait_event_type, ''),
        backend_type = 'client backend', count(*)::bigint
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
    GROUP BY 1, 2, 3";

const AGES: &str = "SELECT
        EXTRACT(epoch FROM now() - min(xact_start))::float8,
        EXTRACT(epoch FROM now() - min(query_start) FILTER (WHERE state = 'active'))::float8
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'";

pub(crate) const STATEMENTS: &[&str] = &[BACKENDS, AGES];

/// (state, wait_event_type) pairs seen before, reported as 0 when gone.
#[derive(Default)]
pub(crate) struct State {
    seen: BTreeSet<(String, String)>,
}

pub(crate) async fn collect(
    session: &Session,
    state: &mut State,
    ctx: Ctx<'_>,
) -> Result<Vec<Point>, Failure> {
    let (backends, ages) =
        futures_util::future::join(session.query(BACKENDS, &[]), session.query(AGES, &[])).await;
    let (backends, ages) = (backends?, ages?);

    let mut total = 0i64;
    let mut clients = 0i64;
    let mut idle_in_transaction = 0i64;
    let mut by_state: BTreeMap<(String, String), i64> = BTreeMap::new();
    for row in backends {
        let (state, wait, client, n): (String, String, bool, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        total += n;
        if !client {
            continue;
        }
        clients += n;
        if state.starts_with("idle in transaction") {
            idle_in_transaction += n;
        }
        *by_state.entry((state_tag(&state), wait_tag(&wait))).or_insert(0) += n;
    }
    for key in &state.seen {
        by_state.entry(key.clone()).or_insert(0);
    }
    state.seen.extend(by_state.keys().cloned());

    let row = ages
        .first()
        .ok_or_else(|| Failure::new("pg_stat_activity returned no row"))?;
    let mut points = Vec::with_capacity(by_state.len() + 1);
    points.push(
        ctx.point("activity")
            .int("backends", total)
            .int("client_backends", clients)
            .int("idle_in_transaction", idle_in_transaction)
            .float("oldest_xact_s", seconds(row.get(0)))
            .float("oldest_query_s", seconds(row.get(1))),
    );
    for ((state, wait), n) in by_state {
        points.push(
            ctx.point("activity")
                .tag("state", state)
                .tag("wait_event_type", wait)
                .int("count", n),
        );
    }
    Ok(points)
}

/// `idle in transaction (aborted)` -> `idle_in_transaction_aborted`: tag
/// values without spaces or parentheses read better in every sink.
fn state_tag(state: &str) -> String {
    if state.is_empty() {
        return "unknown".into();
    }
    state
        .replace(['(', ')'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}

/// No wait event means running on CPU (or about to).
fn wait_tag(wait: &str) -> String {
    if wait.is_empty() {
        "none".into()
    } else {
        wait.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_have_no_spaces() {
        assert_eq!(
            state_tag("idle in transaction (aborted)"),
            "idle_in_transaction_aborted"
        );
        assert_eq!(state_tag("active"), "active");
        assert_eq!(state_tag(""), "unknown");
        assert_eq!(wait_tag(""), "none");
        assert_eq!(wait_tag("Lock"), "Lock");
    }
}
