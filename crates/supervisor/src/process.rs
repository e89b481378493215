//! Signals and process groups: the low-level half of starting and stopping.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// True while a process with this pid runs. A zombie (exited, not yet
/// reaped, as happens to orphans in containers whose init does not reap)
/// does not count.
pub fn alive(pid: u32) -> bool {
    let exists = match kill(Pid::from_raw(pid as i32), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    };
    exists && !zombie(pid)
}

fn zombie(pid: u32) -> bool {
    // /proc/PID/stat: "pid (comm) S ..."; comm may hold spaces or parens.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

/// Sends `signal` to the process group led by `pgid`. A group that is
/// already gone is not an error.
pub fn signal_group(pgid: u32, signal: Signal) -> std::io::Result<()> {
    match killpg(Pid::from_raw(pgid as i32), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// `pid` and all its descendants, parents before children. Postgres puts
/// each backend in a session of its own (setsid), so signalling the
/// postmaster's process group does not reach them: a pause or a kill of a
/// whole server walks the tree instead.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces or parens.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((child, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    // Each pass adds only processes not yet in the tree, so this ends.
    while i < tree.len() {
        let parent = tree[i];
        for &(child, ppid) in &parents {
            if ppid == parent && !tree.contains(&child) {
                tree.push(child);
            }
        }
        i += 1;
    }
    tree
}

/// Sends `signal` to `pid` and every descendant (see [`process_tree`]).
pub fn signal_tree(pid: u32, signal: Signal) {
    for p in process_tree(pid) {
        let _ = kill(Pid::from_raw(p as i32), signal);
    }
}

/// Stops a process that is not our child (so cannot be waited for): sends
/// `signal`, polls until it is gone, and escalates to SIGKILL of its process
/// group after `timeout`. Returns true if it had to escalate.
pub async fn stop_pid(pid: u32, signal: Signal, timeout: Duration) -> bool {
    let _ = kill(Pid::from_raw(pid as i32), signal);
    // A server left paused (SIGSTOP) by a fault cannot act on the signal.
    signal_tree(pid, Signal::SIGCONT);
    if wait_gone(pid, timeout).await {
        return false;
    }
    signal_tree(pid, Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(10)).await;
    true
}

async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

/// How a child we waited for ended; an error waiting counts as an exit
/// without code or signal.
pub(crate) fn to_exit(status: std::io::Result<std::process::ExitStatus>) -> model::Exit {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => model::Exit {
            code: s.code(),
            signal: s.signal(),
        },
        Err(_) => model::Exit {
            code: None,
            signal: None,
        },
    }
}
