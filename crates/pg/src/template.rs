//! The template cache and copies of a cluster: where a Postgres version's
//! pristine template lives, how it is stored, and a copy that gets a system
//! identifier of its own. Both `cluster` (the clusters of an `up`) and
//! `spares` (copies made ahead) build on it.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};

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

/// `cp -a` of `from` to `to` (replaced if it exists), owned by `account`; a
/// failure leaves nothing at `to`.
pub(crate) async fn copy_owned(from: &Path, to: &Path, account: &Account) -> Result<(), Error> {
    let _ = std::fs::remove_dir_all(to);
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::with(ErrorKind::Init, "could not run cp", e))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(to);
        return Err(Error::new(
            ErrorKind::Init,
            format!(
                "copying the template cluster {} failed: {}",
                from.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    account.own_tree(to).map_err(|e| {
        let _ = std::fs::remove_dir_all(to);
        Error::with(ErrorKind::Init, format!("chown {}", to.display()), e)
    })
}

pub(crate) async fn store_template(from: &Path, template: &Path) -> Result<(), Error> {
    let parent = template.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::with(ErrorKind::Init, format!("create {}", parent.display()), e))?;
    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new("cp").arg("-a").arg(from).arg(&tmp).output().await;
    if !matches!(&out, Ok(o) if o.status.success()) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::new(
            ErrorKind::Init,
            "could not store the template cluster",
        ));
    }
    // Another lab may have stored one meanwhile: theirs is as good as ours.
    if std::fs::rename(&tmp, template).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

pub(crate) fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{what}-tmp"))
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|e| {
        Error::with(
            ErrorKind::Init,
            format!("moving {} to {}", from.display(), to.display()),
            e,
        )
    })
}
