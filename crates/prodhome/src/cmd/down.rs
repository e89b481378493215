//! `prodhome down`: stop everything; `--purge` also deletes the state.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, purge: bool) -> Result<i32> {
    let rt = runtime()?;
    if let Some(info) = ctx.state.running_daemon() {
        eprintln!("prodhome: stopping lab {} (daemon pid {})", info.lab, info.pid);
        rt.block_on(ctx.control(&info)?.down())?;
        let deadline = Instant::now() + Duration::from_secs(90);
        while supervisor::alive(info.pid) {
            if Instant::now() >= deadline {
                bail!(
                    "the daemon (pid {}) did not stop within 90 s; see `prodhome logs daemon`",
                    info.pid
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Servers whose daemon was killed: stop them directly, by their pid file.
    let orphans: Vec<u32> = ctx
        .state
        .node_names()
        .into_iter()
        .filter_map(|node| {
            let pid = pg::postmaster_pid(&ctx.state.data_dir(&node))?;
            eprintln!("prodhome: stopping {node} (pid {pid}), left running without a daemon");
            Some(pid)
        })
        .collect();
    let stops = orphans
        .iter()
        .map(|&pid| supervisor::stop_pid(pid, Signal::SIGINT, Duration::from_secs(60)));
    rt.block_on(futures_util::future::join_all(stops));
    match ctx.offline().engine_name_held_elsewhere() {
        Some(holder) => eprintln!(
            "prodhome: the containers named for lab {} belong to the lab running from {holder}; left alone",
            ctx.plan.name
        ),
        None => remove_containers(&rt, &ctx.plan.name, purge),
    }
    if purge {
        let root = ctx.state.root();
        if root.exists() {
            if !ctx.state.is_ours() {
                bail!(
                    "{} does not look like a prodhome state directory; not deleting it",
                    root.display()
                );
            }
            std::fs::remove_dir_all(root)?;
            eprintln!("prodhome: deleted {}", root.display());
        }
    } else {
        eprintln!(
            "prodhome: lab {} is down; data kept in {}",
            ctx.plan.name,
            ctx.state.root().display()
        );
    }
    Ok(0)
}

/// The lab's containers and network (and volumes with `--purge`), when it
/// ran on the docker backend; without an engine there are none to remove.
fn remove_containers(rt: &tokio::runtime::Runtime, lab: &str, purge: bool) {
    let Ok(engine) = rt.block_on(engine::Engine::connect()) else {
        return;
    };
    match rt.block_on(engine.down(lab, purge)) {
        Ok(removed) if !removed.containers.is_empty() || !removed.networks.is_empty() => eprintln!(
            "prodhome: removed {} container(s) and {} network(s) of lab {lab}",
            removed.containers.len(),
            removed.networks.len()
        ),
        Ok(_) => {}
        Err(e) => eprintln!("prodhome: could not remove the lab's containers: {e}"),
    }
}
