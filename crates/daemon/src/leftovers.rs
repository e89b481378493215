//! Services left running by a daemon that was killed -9. Unlike postgres
//! (found again through postmaster.pid), a service leaves no trace of its
//! own, so the daemon keeps `services.pids` up to date while it runs and the
//! next daemon stops whatever in it is still alive before starting anew —
//! otherwise a leftover would hold the port its successor needs.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;
use supervisor::UnitHandle;

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
pub(crate) async fn record(state: StateDir, services: Vec<UnitHandle>, programs: Vec<String>) {
    let path = state.root().join("services.pids");
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
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
