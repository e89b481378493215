//! `process`: CPU and memory of a node's whole process tree (postmaster
//! and every backend and auxiliary process), read from /proc — what the
//! seed setup read from container stats.
//!
//! The postmaster is found as the parent of the sampler's own backend, so
//! it is right again after every restart with nothing to wire; the
//! target's `postmaster_pid` is the fallback while the node cannot be
//! reached. Its processes are the pids pg_stat_activity lists (every
//! backend and auxiliary process) whose parent is the postmaster; only
//! while the node cannot be queried is all of /proc scanned for them. CPU % is per core (200 % = two cores busy), from the ticks each
//! process used since the previous cycle; a process is known by pid and
//! start time, so a recycled pid is a new process, and one that exited
//! since the previous cycle loses its last interval (an undercount, never
//! a negative). Memory: RSS summed over the tree counts shared buffers
//! once per process that touched them; PSS (from `smaps_rollup`) shares
//! them out and sums to what the node really uses, but the kernel walks
//! every page to count it, so it is read every [`PSS_EVERY`] only (the
//! field is in those cycles' points alone).

use std::collections::HashMap;
use std::time::Instant;

use model::Point;

use super::Ctx;
use crate::failure::Failure;
use crate::session::Session;

/// Every process pg_stat_activity knows (it lists auxiliary processes too).
const PIDS: &str = "SELECT array_agg(pid) FROM pg_stat_activity";

pub(crate) const STATEMENTS: &[&str] = &[PIDS];

/// How often PSS is read.
pub(crate) const PSS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Linux reports CPU time in /proc in units of USER_HZ, which is 100 on
/// every architecture (the kernel converts from its internal HZ).
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: i64 = 4096;

#[derive(Default)]
pub(crate) struct State {
    /// (pid, start time) -> CPU ticks at the previous cycle.
    ticks: HashMap<(u32, u64), u64>,
    last: Option<Instant>,
    last_pss: Option<Instant>,
    /// This cycle's pids from pg_stat_activity, when the node answered.
    pids: Option<Vec<u32>>,
}

/// The SQL half, run with the other collectors: which pids to look at.
pub(crate) async fn collect_pids(session: &Session, state: &mut State) -> Result<(), Failure> {
    let rows = session.query(PIDS, &[]).await?;
    let pids: Option<Vec<i32>> = rows.first().and_then(|r| r.get(0));
    state.pids = Some(pids.unwrap_or_default().into_iter().map(|p| p as u32).collect());
    Ok(())
}

/// One line of /proc/PID/stat, the parts we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    pub(crate) ticks: u64,
    pub(crate) start: u64,
    pub(crate) rss_pages: i64,
}

/// Parses /proc/PID/stat. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): field N is f[N - 3].
    let num = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    Some(Stat {
        pid,
        ppid: num(4)? as u32,
        ticks: num(14)? + num(15)?,
        start: num(22)?,
        rss_pages: num(24)? as i64,
    })
}

/// The postmaster: the parent of `backend_pid`, else `fallback` (which the
/// caller checked with [`is_postgres`]).
pub(crate) fn postmaster(backend_pid: Option<u32>, fallback: Option<u32>) -> Option<u32> {
    let from_backend = backend_pid.and_then(read_stat).map(|s| s.ppid).filter(|p| *p > 1);
    from_backend.or(fallback)
}

/// True when `pid` runs the postgres binary: a remembered postmaster pid
/// may have died and been reused by something else.
pub(crate) fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "postgres")
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The postmaster and its processes: the `known` pids whose parent it is
/// (Postgres forks every process from the postmaster), or, with none
/// known, everything below it in /proc.
fn tree(root: u32, known: Option<&[u32]>) -> Vec<Stat> {
    if let Some(known) = known {
        let Some(postmaster) = read_stat(root) else {
            return Vec::new();
        };
        let mut out = vec![postmaster];
        out.extend(
            known
                .iter()
                .filter_map(|pid| read_stat(*pid))
                .filter(|s| s.ppid == root),
        );
        return out;
    }
    let all: Vec<Stat> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect();
    descendants(root, &all)
}

/// `root` and everything below it in `all`.
pub(crate) fn descendants(root: u32, all: &[Stat]) -> Vec<Stat> {
    let mut children: HashMap<u32, Vec<&Stat>> = HashMap::new();
    for s in all {
        children.entry(s.ppid).or_default().push(s);
    }
    let mut out: Vec<Stat> = all.iter().filter(|s| s.pid == root).cloned().collect();
    let mut i = 0;
    while i < out.len() {
        let pid = out[i].pid;
        if let Some(kids) = children.get(&pid) {
            out.extend(kids.iter().map(|s| (*s).clone()));
        }
        i += 1;
    }
    out
}

/// PSS in bytes from /proc/PID/smaps_rollup, when readable.
fn pss_bytes(pid: u32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub(crate) fn collect(
    state: &mut State,
    ctx: Ctx<'_>,
    postmaster: Option<u32>,
) -> Result<Vec<Point>, Failure> {
    let root = postmaster.ok_or_else(|| {
        Failure::new("the postmaster's pid is unknown: the node cannot be reached and no pid was given")
    })?;
    let procs = tree(root, state.pids.take().as_deref());
    if procs.is_empty() {
        return Err(Failure::new(format!(
            "no process {root} in /proc: the node is not running"
        )));
    }
    let now = Instant::now();
    let mut used = 0u64;
    let mut ticks = HashMap::with_capacity(procs.len());
    for p in &procs {
        let key = (p.pid, p.start);
        // A process new since the last cycle used all its ticks in it.
        used += p
            .ticks
            .saturating_sub(state.ticks.get(&key).copied().unwrap_or(0));
        ticks.insert(key, p.ticks);
    }
    let mut point = ctx
        .point("process")
        .int("processes", procs.len() as i64)
        .int("rss_bytes", procs.iter().map(|p| p.rss_pages * PAGE_SIZE).sum());
    if state.last_pss.is_none_or(|t| now.duration_since(t) >= PSS_EVERY) {
        let pss: Option<i64> = procs.iter().map(|p| pss_bytes(p.pid)).sum();
        if let Some(pss) = pss {
            point = point.int("pss_bytes", pss);
            state.last_pss = Some(now);
        }
    }
    if let Some(last) = state.last {
        let seconds = now.duration_since(last).as_secs_f64();
        if seconds > 0.0 {
            point = point.float("cpu_percent", used as f64 / TICKS_PER_SECOND / seconds * 100.0);
        }
    }
    state.ticks = ticks;
    state.last = Some(now);
    Ok(vec![point])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let line = "4242 (postgres: x) (y) S 4200 4200 4200 0 -1 4194560 1 0 0 0 \
                    7 5 0 0 20 0 1 0 123456 1000000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pid: 4242,
                ppid: 4200,
                ticks: 12,
                start: 123456,
                rss_pages: 300
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_tree_holds_the_root_and_all_below_it() {
        let s = |pid, ppid| Stat {
            pid,
            ppid,
            ticks: 0,
            start: 0,
            rss_pages: 0,
        };
        let all = [s(1, 0), s(10, 1), s(11, 10), s(12, 10), s(13, 12), s(20, 1)];
        let mut pids: Vec<u32> = descendants(10, &all).iter().map(|p| p.pid).collect();
        pids.sort();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert!(descendants(99, &all).is_empty());
    }

    #[test]
    fn only_postgres_counts_as_a_postmaster() {
        assert!(!is_postgres(std::process::id()));
        assert!(!is_postgres(u32::MAX));
    }

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        let text = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        assert_eq!(parse_stat(&text).unwrap().pid, me);
    }
}
