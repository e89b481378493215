//! The template cache and copies of a cluster: where a Postgres version's
//! pristine template lives, how it is stored, and a copy that gets a system
//! identifier of its own. Both `cluster` (the clusters of an `up`) and
//! `spares` (copies made ahead) build on it.

use std::path::{Path, PathBuf};

use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};
use crate::staging::{rename, sibling};

/// Bumped when initdb's options change, so stale templates are not used.
const TEMPLATE_FORMAT: u32 = 1;

/// The template's directory name: its Postgres version and format.
pub(crate) fn template_name(bins: &Binaries) -> String {
    format!("pg{}-v{TEMPLATE_FORMAT}", bins.version)
}

/// Where the template of `bins`' version is cached under `cache`.
pub(crate) fn template_dir(cache: &Path, bins: &Binaries) -> PathBuf {
    cache.join(template_name(bins))
}

/// Copies the cluster `from` to `to` (which must not exist), owned by
/// `account`, with a new system identifier; a failure leaves nothing at `to`.
pub(crate) async fn copy_tree(
    from: &Path,
    to: &Path,
    bins: &Binaries,
    account: &Account,
) -> Result<(), Error> {
    let tmp = sibling(to, "copy");
    copy_owned(from, &tmp, account).await?;
    identify_into(bins, account, &tmp, to).await
}

/// Gives the cluster at `tmp` a new system identifier and moves it to `to`;
/// a failure removes `tmp` and leaves nothing at `to`. `tmp` must be where
/// the server account can reach it (a WAL `identity` cannot patch is reset
/// by `pg_resetwal`, run as that account).
pub(crate) async fn identify_into(
    bins: &Binaries,
    account: &Account,
    tmp: &Path,
    to: &Path,
) -> Result<(), Error> {
    if let Err(e) = crate::identity::reidentify(bins, account, tmp).await {
        let _ = std::fs::remove_dir_all(tmp);
        return Err(e);
    }
    rename(tmp, to)
}

/// A copy of the tree `from` at `to` (replaced if it exists), owned by
/// `account`; a failure leaves nothing at `to`. On a blocking thread: the
/// copies of one `up` run side by side.
pub(crate) async fn copy_owned(from: &Path, to: &Path, account: &Account) -> Result<(), Error> {
    let _ = std::fs::remove_dir_all(to);
    let owner = account.switch.then_some((account.uid, account.gid));
    let (src, dst) = (from.to_path_buf(), to.to_path_buf());
    let copied = tokio::task::spawn_blocking(move || crate::copy::tree(&src, &dst, owner))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    copied.map_err(|e| {
        let _ = std::fs::remove_dir_all(to);
        Error::with(
            ErrorKind::Init,
            format!("copying the cluster {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Makes the template of `bins`' version in `cache`, when there is none:
/// an initdb in `scratch` (where the server account can write; the cache
/// may be root's own), then moved into the cache. A template another lab
/// stored meanwhile is as good as ours.
pub(crate) async fn make_template(
    bins: &Binaries,
    account: &Account,
    cache: &Path,
    scratch: &Path,
) -> Result<(), Error> {
    let template = template_dir(cache, bins);
    if template.join("PG_VERSION").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| Error::with(ErrorKind::Init, format!("create {}", cache.display()), e))?;
    let made = scratch.join(format!(".template-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&made);
    crate::initdb::initdb(bins, account, &made).await?;
    let moved = match std::fs::rename(&made, &template) {
        Ok(()) => Ok(()),
        // Another filesystem: a copy beside the template, then a rename.
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let beside = sibling(&template, &format!("store-{}", std::process::id()));
            let stored = match copy_owned(&made, &beside, account).await {
                Ok(()) => std::fs::rename(&beside, &template).map_err(|e| move_error(&template, e)),
                Err(e) => Err(e),
            };
            if stored.is_err() {
                let _ = std::fs::remove_dir_all(&beside);
            }
            stored
        }
        Err(e) => Err(move_error(&template, e)),
    };
    let _ = std::fs::remove_dir_all(&made);
    match moved {
        Err(_) if template.join("PG_VERSION").exists() => Ok(()),
        other => other,
    }
}

fn move_error(template: &Path, e: std::io::Error) -> Error {
    Error::with(
        ErrorKind::Init,
        format!("storing the template cluster {}", template.display()),
        e,
    )
}
