//! Creating clusters: spares renamed into place, copies of a cached
//! template, or one initdb and copies of it.
//!
//! The first lab on a machine runs initdb for one node and copies it for
//! the others (each copy gets a system identifier of its own); once that lab
//! is ready, the daemon makes the version's template in the cache, and spare
//! copies of it, in the background (`spares`), so that neither is on the
//! first `up`'s path. Later clusters of the same Postgres version are spares
//! or copies of the template (a copy is several times faster than initdb).
//! Every step works in a temporary directory renamed into place at the end,
//! so an interrupted `up` never leaves a half-made cluster.

use std::path::{Path, PathBuf};

use crate::NodeSpec;
use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::Error;
use crate::initdb::initdb;
use crate::template::{copy_tree, template_dir};

/// Makes sure every node has a cluster. `cache` is the template cache
/// directory (`None` disables it). Returns the names of the nodes created.
pub async fn ensure_clusters(
    bins: &Binaries,
    account: &Account,
    nodes: &[NodeSpec],
    cache: Option<&Path>,
) -> Result<Vec<String>, Error> {
    let missing: Vec<&NodeSpec> = nodes
        .iter()
        .filter(|n| !n.data_dir.join("PG_VERSION").exists())
        .collect();
    let made: Vec<String> = missing.iter().map(|n| n.name.clone()).collect();
    if missing.is_empty() {
        return Ok(made);
    }
    // Spares first: a rename and a new identity each (see `spares`).
    let taken = match cache {
        Some(cache) => {
            let dirs: Vec<&Path> = missing.iter().map(|n| n.data_dir.as_path()).collect();
            crate::spares::take(cache, bins, account, &dirs).await?
        }
        None => vec![false; missing.len()],
    };
    let missing: Vec<&NodeSpec> = missing
        .into_iter()
        .zip(taken)
        .filter_map(|(node, taken)| (!taken).then_some(node))
        .collect();
    if missing.is_empty() {
        return Ok(made);
    }
    let template = cache
        .map(|dir| template_dir(dir, bins))
        .filter(|t| t.join("PG_VERSION").exists());
    // One initdb at most: the other clusters are copies with their own
    // system identifier. A copy is a fraction of an initdb's CPU, and two
    // cores cannot run three initdbs in parallel any faster than one.
    let (source, copies) = match template {
        Some(t) => (t, &missing[..]),
        None => {
            initdb(bins, account, &missing[0].data_dir).await?;
            (missing[0].data_dir.clone(), &missing[1..])
        }
    };
    let jobs = copies
        .iter()
        .map(|node| copy_tree(&source, &node.data_dir, bins, account));
    for result in futures_util::future::join_all(jobs).await {
        result?;
    }
    Ok(made)
}

/// How the supervisor runs the server.
pub fn server_command(bins: &Binaries, node: &NodeSpec) -> (PathBuf, Vec<String>) {
    (
        bins.tool("postgres"),
        vec!["-D".into(), node.data_dir.display().to_string()],
    )
}

/// The postmaster's pid from `postmaster.pid`, when that process is still
/// a running postgres (a stale file or a reused pid is ignored).
pub fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    let pid: u32 = pid_file(data_dir)?.lines().next()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    String::from_utf8_lossy(argv0).contains("postgres").then_some(pid)
}

/// The status a server's `postmaster.pid` gives while it is "starting" or
/// "stopping"; `None` when it is ready or the file cannot be read (then
/// only a connection tells). A file without its status line yet is a
/// server starting: the postmaster listens on its sockets before it writes
/// that line (Postgres 10 and later always write it), and a connection in
/// between is turned away.
pub(crate) fn postmaster_status(data_dir: &Path) -> Option<String> {
    let text = pid_file(data_dir)?;
    // Line 8 (LOCK_FILE_LINE_PM_STATUS), padded with spaces.
    let status = text.lines().nth(7).map_or("starting", str::trim);
    matches!(status, "starting" | "stopping").then(|| status.to_owned())
}

/// The server's `postmaster.pid`, when there is one to read.
fn pid_file(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()
}

#[cfg(test)]
mod tests {
    use super::{postmaster_pid, postmaster_status};

    /// `postmaster.pid` as Postgres 15 writes it: pid, data directory,
    /// start time, port, socket directory, listen address, shared memory
    /// key, then the status padded to 8 characters.
    fn pid_file(dir: &std::path::Path, status: Option<&str>) {
        let mut text = format!(
            "{}\n{}\n1796226937\n5432\n/tmp\n127.0.0.1\n  5432001      7\n",
            std::process::id(),
            dir.display()
        );
        if let Some(status) = status {
            text.push_str(&format!("{status:<8}\n"));
        }
        std::fs::write(dir.join("postmaster.pid"), text).unwrap();
    }

    #[test]
    fn a_starting_or_stopping_server_is_told_by_its_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(postmaster_status(dir.path()), None, "no file: connect to tell");
        pid_file(dir.path(), None);
        assert_eq!(
            postmaster_status(dir.path()).as_deref(),
            Some("starting"),
            "listening, no status line yet"
        );
        pid_file(dir.path(), Some("starting"));
        assert_eq!(postmaster_status(dir.path()).as_deref(), Some("starting"));
        pid_file(dir.path(), Some("stopping"));
        assert_eq!(postmaster_status(dir.path()).as_deref(), Some("stopping"));
        pid_file(dir.path(), Some("ready"));
        assert_eq!(postmaster_status(dir.path()), None);
        pid_file(dir.path(), Some("standby"));
        assert_eq!(postmaster_status(dir.path()), None);
        // The pid in it is this test's, a live process but not a postgres.
        assert_eq!(postmaster_pid(dir.path()), None);
    }
}
