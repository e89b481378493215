//! Spare clusters: copies of the cached template made ahead of time, owned
//! by the server account, so that the next `up` *renames* one into place
//! (and gives it a system identifier of its own there, where the server
//! account can reach it) instead of copying
//! ~1,000 files (on ext4 a file creation can cost half a millisecond right
//! after many deletions, which is most of a warm `up`).
//!
//! The daemon refills them in the background once its lab is ready
//! ([`fill_spares`], which first makes the template itself after a cold
//! `up`); [`take`] is the only reader. A spare lives in
//! `CACHE/spares/pgVERSION-vFORMAT-uUID/NAME`; names starting with a dot are
//! copies still being made. A rename only works within one filesystem, so a
//! cache on another filesystem than the lab's state gets no spares.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};

/// At most this many spares per version and account (~40 MB each).
pub const MAX_SPARES: usize = 8;

/// A copy being made that is older than this was abandoned (its daemon
/// stopped mid-copy) and is removed.
const ABANDONED: Duration = Duration::from_secs(600);

fn dir(cache: &Path, bins: &Binaries, account: &Account) -> PathBuf {
    let version = crate::template::template_name(bins);
    cache.join("spares").join(format!("{version}-u{}", account.uid))
}

/// The spares ready to take, by name.
fn ready(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.join("PG_VERSION").exists())
        .collect();
    found.sort();
    found
}

/// Moves a spare to each of `data_dirs` (none may exist) while there are
/// spares, and gives each its own system identifier (the renames are
/// instant; an identifier is a few bytes written, see `identity`). Says
/// which got one: none when there are no spares, or when they are on
/// another filesystem.
pub(crate) async fn take(
    cache: &Path,
    bins: &Binaries,
    account: &Account,
    data_dirs: &[&Path],
) -> Result<Vec<bool>, Error> {
    let dir = dir(cache, bins, account);
    let mut claimed = Vec::new();
    let taken: Vec<bool> = data_dirs
        .iter()
        .map(|data_dir| match claim(&dir, data_dir) {
            Some(tmp) => {
                claimed.push((tmp, *data_dir));
                true
            }
            None => false,
        })
        .collect();
    let each = claimed
        .iter()
        .map(|(tmp, data_dir)| crate::template::identify_into(bins, account, tmp, data_dir));
    futures_util::future::try_join_all(each).await?;
    Ok(taken)
}

/// Renames a spare of `dir` to a temporary beside `data_dir`, where the
/// server account reaches it; `None` when there is none to take here.
fn claim(dir: &Path, data_dir: &Path) -> Option<PathBuf> {
    if !same_filesystem(dir, data_dir) {
        return None;
    }
    // Another `up` may take the same spare first: its rename wins, ours
    // fails with "not found" and tries the next.
    let tmp = crate::staging::sibling(data_dir, "spare");
    ready(dir)
        .iter()
        .any(|spare| std::fs::rename(spare, &tmp).is_ok())
        .then_some(tmp)
}

fn same_filesystem(spares: &Path, data_dir: &Path) -> bool {
    let parent = data_dir.parent().unwrap_or(Path::new("."));
    match (std::fs::metadata(spares), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// Makes the cache's template of this version when it has none (an initdb
/// in `state`, the lab's state directory, which the server account
/// reaches), then spares from it until there are `want` (at most
/// [`MAX_SPARES`]), or until `go_on` says stop (asked before each step: a
/// daemon that is stopping waits for the step under way, so it leaves no
/// half copy and no copy or initdb running). Returns how many spares it
/// made; a cache on another filesystem than `state` gets none.
pub async fn fill_spares(
    bins: &Binaries,
    account: &Account,
    cache: &Path,
    state: &Path,
    want: usize,
    go_on: &(dyn Fn() -> bool + Sync),
) -> Result<usize, Error> {
    if !go_on() {
        return Ok(0);
    }
    crate::template::make_template(bins, account, cache, state).await?;
    prune_stale(cache, bins);
    let template = crate::template::template_dir(cache, bins);
    let dir = dir(cache, bins, account);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::with(ErrorKind::Init, format!("creating {}", dir.display()), e))?;
    if !same_filesystem(&dir, &state.join("x")) {
        return Ok(0);
    }
    remove_abandoned(&dir);
    let mut made = 0;
    while go_on() && ready(&dir).len() < want.min(MAX_SPARES) {
        let name = format!("{}-{}", unique_stamp(), std::process::id());
        // Copied under a dot name, renamed when whole: a taker never sees
        // half a spare. Not reidentified here: the cache may be where the
        // server account cannot go (root's home), so `take` does it.
        let partial = dir.join(format!(".{name}"));
        crate::template::copy_owned(&template, &partial, account).await?;
        crate::staging::rename(&partial, &dir.join(name))?;
        made += 1;
    }
    Ok(made)
}

/// Removes the templates of this Postgres version that a prodhome of
/// another template format made (never used by this one), and
/// their spares, ~40 MB each. Each is renamed away first, as a spare is
/// taken, so a prodhome that takes it at the same moment gets it whole or
/// not at all.
fn prune_stale(cache: &Path, bins: &Binaries) {
    let current = crate::template::template_name(bins);
    let prefix = format!("pg{}-v", bins.version);
    let stale = |dir: &Path, keep: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let left = name.starts_with(&format!(".{prefix}")) && name.ends_with(".stale-tmp");
                left || (name.starts_with(&prefix) && !keep(&name))
            })
            .map(|e| e.path())
            .collect()
    };
    let spares = cache.join("spares");
    let current_spares = |name: &str| name.starts_with(&format!("{current}-u"));
    let found = stale(cache, &|name| name == current)
        .into_iter()
        .chain(stale(&spares, &current_spares));
    for path in found {
        // One a stopped pruning renamed away already is removed as it is.
        if path.to_string_lossy().ends_with(".stale-tmp") {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        let away = crate::staging::sibling(&path, "stale");
        if std::fs::rename(&path, &away).is_ok() {
            let _ = std::fs::remove_dir_all(&away);
        }
    }
}

fn unique_stamp() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn remove_abandoned(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let abandoned = entry.file_name().to_string_lossy().starts_with('.')
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > ABANDONED);
        if abandoned {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
