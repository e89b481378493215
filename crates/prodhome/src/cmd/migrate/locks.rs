//! Who waited on the migration: every ~100 ms, the publisher's sessions
//! with their blockers (`pg_blocking_pids`) and wait start (`pg_locks`),
//! and the relation locks the migration's own backend holds.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_postgres::Client;

/// How often the publisher is sampled.
const EVERY: Duration = Duration::from_millis(100);

/// Which backends are the migration's.
pub(crate) enum Who {
    /// prodhome's own session for a script.
    Pid(i32),
    /// A command's: sessions named `prodhome-migrate` (PGAPPNAME) and any
    /// client session that was not there before it started and is not
    /// prodhome's own.
    NewSince(HashSet<i32>),
}

/// One relation lock the migration held.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct Held {
    pub(crate) table: String,
    pub(crate) mode: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct LockReport {
    /// Sessions that waited behind the migration (directly or behind one that did).
    pub(crate) blocked_sessions: u64,
    /// Distinct waits (a session can wait more than once).
    pub(crate) lock_waits: u64,
    pub(crate) max_lock_wait_ms: u64,
    /// How long the migration itself waited for its locks.
    pub(crate) migration_waited_ms: u64,
    pub(crate) locks: BTreeSet<Held>,
    pub(crate) samples: u64,
}

struct Row {
    pid: i32,
    app: String,
    client: bool,
    blockers: Vec<i32>,
    wait_ms: Option<f64>,
    wait_start: Option<String>,
}

const ACTIVITY: &str = "SELECT a.pid, coalesce(a.application_name, ''), a.backend_type = 'client backend', \
        pg_blocking_pids(a.pid), w.ms, w.since \
   FROM pg_stat_activity a \
   LEFT JOIN LATERAL (SELECT (extract(epoch FROM now() - min(l.waitstart)) * 1000)::float8 AS ms, \
                             min(l.waitstart)::text AS since \
                        FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) w ON true \
  WHERE a.pid <> pg_backend_pid()";

const HELD: &str = "SELECT l.relation::regclass::text, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
  WHERE l.pid = ANY($1) AND l.granted AND l.locktype = 'relation' \
    AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)";

/// The client sessions on the node now (for [`Who::NewSince`]).
pub(crate) async fn client_pids(client: &Client) -> Result<HashSet<i32>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Samples until `stop` turns true (or its sender is dropped), then once more.
pub(crate) async fn watch(client: Client, who: Who, mut stop: watch::Receiver<bool>) -> LockReport {
    let mut state = State::default();
    let mut tick = tokio::time::interval(EVERY);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => *stop.borrow(),
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
        };
        state.sample(&client, &who).await;
        if last {
            return state.report();
        }
    }
}

#[derive(Default)]
struct State {
    /// pid → longest wait seen.
    blocked: HashMap<i32, f64>,
    waits: HashSet<(i32, String)>,
    migration_waited: f64,
    locks: BTreeSet<Held>,
    samples: u64,
}

impl State {
    async fn sample(&mut self, client: &Client, who: &Who) {
        let Ok(rows) = client.query(ACTIVITY, &[]).await else {
            return;
        };
        self.samples += 1;
        let rows: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                pid: r.get(0),
                app: r.get(1),
                client: r.get(2),
                blockers: r.get(3),
                wait_ms: r.get(4),
                wait_start: r.get(5),
            })
            .collect();
        let migrators: HashSet<i32> = rows
            .iter()
            .filter(|r| is_migrator(r, who))
            .map(|r| r.pid)
            .collect();
        for row in rows.iter().filter(|r| migrators.contains(&r.pid)) {
            self.migration_waited = self.migration_waited.max(row.wait_ms.unwrap_or(0.0));
        }
        for (pid, (ms, since)) in blocked_behind(&rows, &migrators) {
            let longest = self.blocked.entry(pid).or_default();
            *longest = longest.max(ms);
            self.waits.insert((pid, since));
        }
        if !migrators.is_empty() {
            let pids: Vec<i32> = migrators.into_iter().collect();
            if let Ok(held) = client.query(HELD, &[&pids]).await {
                self.locks.extend(held.iter().map(|r| Held {
                    table: r.get(0),
                    mode: r.get(1),
                }));
            }
        }
    }

    fn report(self) -> LockReport {
        LockReport {
            blocked_sessions: self.blocked.len() as u64,
            lock_waits: self.waits.len() as u64,
            max_lock_wait_ms: self.blocked.values().fold(0.0f64, |a, b| a.max(*b)) as u64,
            migration_waited_ms: self.migration_waited as u64,
            locks: self.locks,
            samples: self.samples,
        }
    }
}

fn is_migrator(row: &Row, who: &Who) -> bool {
    match who {
        Who::Pid(pid) => row.pid == *pid,
        Who::NewSince(before) => {
            row.app == "prodhome-migrate"
                || (row.client && !before.contains(&row.pid) && !row.app.starts_with("prodhome"))
        }
    }
}

/// The waiting sessions blocked by a migrator, or by a session so blocked
/// (a lock queue forms behind the migration): pid → (wait ms, wait start).
fn blocked_behind(rows: &[Row], migrators: &HashSet<i32>) -> BTreeMap<i32, (f64, String)> {
    let mut blocked: BTreeMap<i32, (f64, String)> = BTreeMap::new();
    // Each pass adds at least one session or stops: at most rows.len() passes.
    for _ in 0..=rows.len() {
        let before = blocked.len();
        for row in rows {
            let (Some(ms), false) = (row.wait_ms, migrators.contains(&row.pid)) else {
                continue;
            };
            if blocked.contains_key(&row.pid) {
                continue;
            }
            if row
                .blockers
                .iter()
                .any(|b| migrators.contains(b) || blocked.contains_key(b))
            {
                blocked.insert(row.pid, (ms, row.wait_start.clone().unwrap_or_default()));
            }
        }
        if blocked.len() == before {
            break;
        }
    }
    blocked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i32, blockers: &[i32], waiting: bool) -> Row {
        Row {
            pid,
            app: "prodhome-hum".into(),
            client: true,
            blockers: blockers.to_vec(),
            wait_ms: waiting.then_some(f64::from(pid)),
            wait_start: waiting.then(|| format!("t{pid}")),
        }
    }

    #[test]
    fn sessions_queued_behind_a_session_the_migration_blocks_count_too() {
        let migrators: HashSet<i32> = [1].into();
        // 3 waits on 2, which waits on the migration; 5 waits on 4, a hum
        // session holding a row lock: not the migration's doing.
        let rows = [
            row(1, &[], false),
            row(3, &[2], true),
            row(2, &[1], true),
            row(4, &[], false),
            row(5, &[4], true),
        ];
        let blocked = blocked_behind(&rows, &migrators);
        assert_eq!(blocked.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
    }
}
