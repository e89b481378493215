//! `locks`: pg_locks joined with pg_stat_activity.
//!
//! Counts by mode x locktype x granted, and who waits on whom: waiting
//! backends, the oldest wait, blocked backends and the longest blocking
//! chain. `pg_blocking_pids` takes the lock manager's locks for a moment,
//! so it is called only for backends that are waiting, never for all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use model::Point;

use super::{Ctx, seconds};
use crate::failure::Failure;
use crate::session::Session;

const BY_MODE: &str = "SELECT mode, locktype, granted, count(*)::bigint
    FROM pg_locks
    WHERE pid IS DISTINCT FROM pg_backend_pid()
    GROUP BY 1, 2, 3";

const WAITS: &str = "SELECT l.pid, pg_blocking_pids(l.pid),
        EXTRACT(epoch FROM now() - min(coalesce(l.waitstart, a.state_change)))::float8
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE NOT l.granted
    GROUP BY l.pid";

pub(crate) const STATEMENTS: &[&str] = &[BY_MODE, WAITS];

/// Combinations seen before: reported as 0 when gone, so a line on a chart
/// falls to zero instead of stopping.
#[derive(Default)]
pub(crate) struct State {
    seen: BTreeSet<(String, String, bool)>,
}

pub(crate) async fn collect(
    session: &Session,
    state: &mut State,
    ctx: Ctx<'_>,
) -> Result<Vec<Point>, Failure> {
    let (by_mode, waits) =
        futures_util::future::join(session.query(BY_MODE, &[]), session.query(WAITS, &[])).await;
    let (by_mode, waits) = (by_mode?, waits?);

    let mut counts: BTreeMap<(String, String, bool), i64> = BTreeMap::new();
    for row in by_mode {
        counts.insert((row.get(0), row.get(1), row.get(2)), row.get(3));
    }
    for key in &state.seen {
        counts.entry(key.clone()).or_insert(0);
    }
    state.seen.extend(counts.keys().cloned());

    let mut blockers: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut oldest = 0.0f64;
    for row in &waits {
        let pid: i32 = row.get(0);
        blockers.insert(pid, row.get(1));
        oldest = oldest.max(seconds(row.get(2)));
    }
    let blocked = blockers.values().filter(|b| !b.is_empty()).count();

    let mut points = Vec::with_capacity(counts.len() + 1);
    points.push(
        ctx.point("locks")
            .int("waiting", waits.len() as i64)
            .int("blocked", blocked as i64)
            .float("oldest_wait_s", oldest)
            .int("longest_chain", longest_chain(&blockers) as i64),
    );
    for ((mode, locktype, granted), n) in counts {
        points.push(
            ctx.point("locks")
                .tag("mode", mode)
                .tag("locktype", locktype)
                .tag("granted", granted.to_string())
                .int("count", n),
        );
    }
    Ok(points)
}

/// The longest chain of waits: A waits for B which waits for C is 2. A
/// backend that waits for nobody (or is not waiting) is 0. Deadlock cycles
/// (before the deadlock detector breaks them) count each backend once.
pub(crate) fn longest_chain(blockers: &HashMap<i32, Vec<i32>>) -> usize {
    fn depth(
        pid: i32,
        blockers: &HashMap<i32, Vec<i32>>,
        memo: &mut HashMap<i32, usize>,
        path: &mut Vec<i32>,
    ) -> usize {
        if let Some(d) = memo.get(&pid) {
            return *d;
        }
        if path.contains(&pid) {
            return 0; // a cycle: stop here
        }
        path.push(pid);
        let d = blockers
            .get(&pid)
            .map(|bs| {
                bs.iter()
                    .map(|b| 1 + depth(*b, blockers, memo, path))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        path.pop();
        memo.insert(pid, d);
        d
    }
    let mut memo = HashMap::new();
    let mut path = Vec::new();
    blockers
        .keys()
        .map(|pid| depth(*pid, blockers, &mut memo, &mut path))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_count_edges_and_survive_cycles() {
        let graph = |edges: &[(i32, &[i32])]| -> HashMap<i32, Vec<i32>> {
            edges.iter().map(|(p, bs)| (*p, bs.to_vec())).collect()
        };
        assert_eq!(longest_chain(&graph(&[])), 0);
        assert_eq!(longest_chain(&graph(&[(2, &[1])])), 1);
        // 4 -> 3 -> 2 -> 1, and 5 -> 1
        assert_eq!(
            longest_chain(&graph(&[(4, &[3]), (3, &[2]), (2, &[1]), (5, &[1])])),
            3
        );
        // Waiting with no blocker known (it just got the lock).
        assert_eq!(longest_chain(&graph(&[(7, &[])])), 0);
        // A deadlock not yet detected: 1 -> 2 -> 1.
        assert!(longest_chain(&graph(&[(1, &[2]), (2, &[1])])) <= 2);
    }
}
