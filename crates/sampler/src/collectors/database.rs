//! `database`: pg_stat_database counters as per-second rates, one point
//! per database (templates left out).
//!
//! Counters restart from zero when the node restarts (a crash discards
//! them) or someone calls `pg_stat_reset()`; the rate's epoch is the
//! postmaster's start time with `stats_reset`, so either shows as one
//! missing sample rather than a negative rate or a spike (see `rates`).
//! The first cycle has no previous reading and gives no point.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use model::Point;

use super::Ctx;
use crate::failure::Failure;
use crate::rates::{Rates, Reading};
use crate::session::Session;

const STATS: &str = "SELECT datname,
        xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,
        tup_inserted, tup_updated, tup_deleted, conflicts, temp_files, temp_bytes, deadlocks,
        (EXTRACT(epoch FROM pg_postmaster_start_time()) * 1e6)::bigint,
        (EXTRACT(epoch FROM stats_reset) * 1e6)::bigint
    FROM pg_stat_database
    WHERE datname IS NOT NULL AND NOT datname IN ('template0', 'template1')";

pub(crate) const STATEMENTS: &[&str] = &[STATS];

/// The counters, in the query's column order (from column 1). Each becomes
/// a field of the same name holding its per-second rate.
pub const COUNTERS: &[&str] = &[
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "conflicts",
    "temp_files",
    "temp_bytes",
    "deadlocks",
];

#[derive(Default)]
pub(crate) struct State {
    rates: Rates<(String, &'static str)>,
}

pub(crate) async fn collect(
    session: &Session,
    state: &mut State,
    ctx: Ctx<'_>,
) -> Result<Vec<Point>, Failure> {
    let rows = session.query(STATS, &[]).await?;
    let at_ns = model::now_ns();
    let mut points = Vec::new();
    let mut present = Vec::new();
    for row in rows {
        let datname: String = row.get(0);
        let started: Option<i64> = row.get(COUNTERS.len() + 1);
        let reset: Option<i64> = row.get(COUNTERS.len() + 2);
        let mut h = DefaultHasher::new();
        (started, reset).hash(&mut h);
        let epoch = h.finish();
        let mut point = ctx.point("database").tag("datname", datname.clone());
        for (i, name) in COUNTERS.iter().enumerate() {
            let value: Option<i64> = row.get(i + 1);
            let Some(value) = value else { continue };
            let reading = Reading { value, at_ns, epoch };
            if let Some(rate) = state.rates.update((datname.clone(), name), reading) {
                point = point.float(*name, rate);
            }
        }
        if !point.fields.is_empty() {
            points.push(point);
        }
        present.push(datname);
    }
    state.rates.retain(|(d, _)| present.contains(d));
    Ok(points)
}
