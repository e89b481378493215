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

/// Stops a process that is not our child (so cannot be waited for): sends
/// `signal`, polls until it is gone, and escalates to SIGKILL of its process
/// group after `timeout`. Returns true if it had to escalate.
pub async fn stop_pid(pid: u32, signal: Signal, timeout: Duration) -> bool {
    let _ = kill(Pid::from_raw(pid as i32), signal);
    if wait_gone(pid, timeout).await {
        return false;
    }
    let _ = signal_group(pid, Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
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
