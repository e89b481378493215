//! Who holds `daemon.lock`, found without taking it.
//!
//! A probe that takes the lock for a moment (as `status` once did) can make
//! a daemon starting at that instant believe another one runs. So the
//! kernel's lock table (`/proc/locks`) names the holder, and `/proc/PID`
//! tells whether it is alive or on its way out: a `kill -9`ed daemon keeps
//! its lock until its last thread has exited, and may then stay a zombie
//! for a while (PID 1 reaps slowly here), so "its pid answers `kill -0`" is
//! not "it runs".

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// The state of the lab's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder {
    /// Nobody holds it: no daemon runs this lab.
    Free,
    /// A live process holds it: a daemon that runs (or is starting). The pid
    /// is 0 when the kernel's lock table did not name it.
    Alive(u32),
    /// A process that is exiting (killed, a zombie, or already gone) holds
    /// it for a moment more: its lock goes with it.
    Dying(u32),
}

/// How far a process is from gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    /// Killed or exiting: a fatal signal pending, its threads exiting, or a
    /// zombie waiting to be reaped.
    Dying,
    Gone,
}

/// The holder of the flock on `lock_file`; `fallback_pid` (daemon.json's)
/// names it when the lock table cannot.
pub(crate) fn lock_holder(lock_file: &Path, fallback_pid: Option<u32>) -> LockHolder {
    let Ok(meta) = std::fs::metadata(lock_file) else {
        return LockHolder::Free;
    };
    match table_holder(&meta) {
        Some(pid) => classify(pid),
        None => probe(lock_file, fallback_pid),
    }
}

fn classify(pid: u32) -> LockHolder {
    match liveness(pid) {
        Liveness::Alive => LockHolder::Alive(pid),
        Liveness::Dying | Liveness::Gone => LockHolder::Dying(pid),
    }
}

/// The lock table had no entry for the file (or could not be read): try
/// the lock itself, releasing it at once.
fn probe(lock_file: &Path, fallback_pid: Option<u32>) -> LockHolder {
    let Ok(file) = std::fs::OpenOptions::new().read(true).open(lock_file) else {
        return LockHolder::Free;
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => LockHolder::Free,
        Err(_) => fallback_pid.map(classify).unwrap_or(LockHolder::Alive(0)),
    }
}

/// The pid of the FLOCK entry for this file in `/proc/locks`:
/// `1: FLOCK  ADVISORY  WRITE 2193 fe:00:5783910 0 EOF` (a waiter's line
/// has `->` before FLOCK and is skipped).
fn table_holder(meta: &std::fs::Metadata) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let (major, minor) = dev_parts(meta.dev());
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == id => pid.parse().ok(),
            _ => None,
        }
    })
}

/// glibc's `major`/`minor` of a `st_dev`.
fn dev_parts(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Reads /proc/PID: the state letter and flags in `stat`, and the pending
/// signals in `status` (SIGKILL is queued before `kill(2)` returns, while
/// the threads it kills may take a while to notice).
pub(crate) fn liveness(pid: u32) -> Liveness {
    if pid == 0 || kill(Pid::from_raw(pid as i32), None) == Err(Errno::ESRCH) {
        return Liveness::Gone;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Liveness::Gone;
    };
    // "pid (comm) S ppid pgrp session tty tpgid flags ..."; comm may hold
    // spaces or parens, so fields count from the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let state = fields.first().copied().unwrap_or("");
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    const PF_EXITING: u64 = 0x4;
    if matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0 || sigkill_pending(pid) {
        Liveness::Dying
    } else {
        Liveness::Alive
    }
}

fn sigkill_pending(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    const SIGKILL_BIT: u64 = 1 << (9 - 1);
    status.lines().any(|line| {
        let mask = line
            .strip_prefix("SigPnd:")
            .or_else(|| line.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & SIGKILL_BIT != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_by_this_process_is_named_with_its_pid() {
        let dir = std::env::temp_dir().join(format!("holder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("daemon.lock");
        let file = std::fs::File::create(&path).unwrap();
        assert_eq!(lock_holder(&path, None), LockHolder::Free);
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
        assert_eq!(lock_holder(&path, None), LockHolder::Alive(std::process::id()));
        drop(held);
        assert_eq!(lock_holder(&path, None), LockHolder::Free);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_killed_child_is_dying_or_gone_never_alive() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert_eq!(liveness(pid), Liveness::Alive);
        kill(Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).unwrap();
        // Not reaped yet: a zombie, or still exiting; either way not alive.
        assert_ne!(liveness(pid), Liveness::Alive);
        child.wait().unwrap();
        assert_eq!(liveness(pid), Liveness::Gone);
    }
}
