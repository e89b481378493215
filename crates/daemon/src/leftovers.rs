//! Services left running by a daemon that was killed -9. Unlike postgres
//! (found again through postmaster.pid), a service leaves no trace of its
//! own, so the daemon keeps `services.pids` up to date while it runs and the
//! next daemon stops whatever in it is still alive before starting anew —
//! otherwise a leftover would hold the port its successor needs.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;
use supervisor::{UnitHandle, UnitStatus};
use tokio::sync::watch;

use crate::layout::{StateDir, write_atomic};

/// Stops the services a previous daemon left behind; returns their names.
pub(crate) async fn stop_leftovers(state: &StateDir) -> Vec<String> {
    let path = state.root().join("services.pids");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let pids: BTreeMap<String, (u32, String)> = serde_json::from_str(&text).unwrap_or_default();
    let mut stopped = Vec::new();
    for (name, (pid, program)) in pids {
        // The pid may have been reused since: only a process running the
        // same program is ours.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if supervisor::alive(pid) && String::from_utf8_lossy(&cmdline).contains(&program) {
            supervisor::signal_tree(pid, Signal::SIGCONT);
            supervisor::stop_pid(pid, Signal::SIGTERM, Duration::from_secs(10)).await;
            stopped.push(name);
        }
    }
    let _ = std::fs::remove_file(&path);
    stopped
}

/// Keeps `services.pids` in step with the running services, until aborted.
/// It is written as soon as a service's status changes, so a service's pid
/// is on disk right after its process starts: a daemon killed at any
/// moment after that leaves nothing behind that the next one cannot find.
pub(crate) async fn record(state: StateDir, services: Vec<UnitHandle>, programs: Vec<String>) {
    let path = state.root().join("services.pids");
    let mut watches: Vec<_> = services.iter().map(UnitHandle::subscribe).collect();
    let mut last = None;
    loop {
        let now: BTreeMap<String, (u32, String)> = services
            .iter()
            .zip(&programs)
            .filter_map(|(u, program)| {
                u.status()
                    .pid
                    .map(|pid| (u.name().to_string(), (pid, program.clone())))
            })
            .collect();
        if last.as_ref() != Some(&now) {
            if let Ok(json) = serde_json::to_string(&now) {
                let _ = write_atomic(&path, json.as_bytes(), 0o644);
            }
            last = Some(now);
        }
        if !any_changed(&mut watches).await {
            return;
        }
    }
}

/// Waits until one of `watches` changes; false once every unit's task has
/// ended (each closed watch is dropped from the list).
async fn any_changed(watches: &mut Vec<watch::Receiver<UnitStatus>>) -> bool {
    while !watches.is_empty() {
        let changes = watches.iter_mut().map(|w| Box::pin(w.changed()));
        let (result, i, _) = futures_util::future::select_all(changes).await;
        if result.is_ok() {
            return true;
        }
        watches.swap_remove(i);
    }
    false
}
