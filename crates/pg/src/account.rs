//! The Unix account servers run as. Postgres refuses to run as root, so when
//! prodhome runs as root (containers, CI) servers run as `postgres` or the
//! lab's `run_as`, and their directories are owned by that account.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Uid, User, getuid};

use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// True when servers run as another user than prodhome (we are root).
    pub switch: bool,
}

impl Account {
    /// Picks the account: the current user, or when root `run_as` (default
    /// `postgres`).
    pub fn resolve(run_as: Option<&str>) -> Result<Account, Error> {
        let me = getuid();
        if me.is_root() {
            let name = run_as.unwrap_or("postgres");
            let user = User::from_name(name).ok().flatten().ok_or_else(|| {
                Error::new(
                    ErrorKind::Account,
                    format!(
                        "prodhome runs as root, and Postgres refuses to; the account \"{name}\" it would run servers as does not exist. \
                         Create it (useradd --system {name}), install the postgresql package (which creates \"postgres\"), or set run_as in the lab file"
                    ),
                )
            })?;
            if user.uid.is_root() {
                return Err(Error::new(
                    ErrorKind::Account,
                    format!(
                        "run_as = \"{name}\" is root, and Postgres refuses to run as root; name an unprivileged account"
                    ),
                ));
            }
            return Ok(Account {
                name: user.name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                switch: true,
            });
        }
        let user = User::from_uid(me).ok().flatten();
        let name = user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| me.to_string());
        if let Some(wanted) = run_as
            && wanted != name
        {
            return Err(Error::new(
                ErrorKind::Account,
                format!(
                    "run_as = \"{wanted}\" needs prodhome to run as root; you are \"{name}\". Remove run_as to run servers as yourself"
                ),
            ));
        }
        let gid = user
            .map(|u| u.gid.as_raw())
            .unwrap_or_else(|| nix::unistd::getgid().as_raw());
        Ok(Account {
            name,
            uid: me.as_raw(),
            gid,
            switch: false,
        })
    }

    /// Gives `path` to the account (when servers run as someone else).
    pub fn own(&self, path: &Path) -> std::io::Result<()> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))?;
        }
        Ok(())
    }
}

/// Checks that `account` can walk down to `dir`: every ancestor must be
/// searchable by it. Postgres fails late and obscurely otherwise.
pub fn check_reachable(account: &Account, dir: &Path) -> Result<(), Error> {
    if !account.switch {
        return Ok(());
    }
    let mut blocked = None;
    for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            break;
        };
        let mode = meta.mode();
        let ok = if meta.uid() == account.uid {
            mode & 0o100 != 0
        } else if meta.gid() == account.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok && Uid::from_raw(account.uid) != Uid::from_raw(meta.uid()) {
            blocked = Some((ancestor.to_path_buf(), mode & 0o777));
            break;
        }
    }
    match blocked {
        None => Ok(()),
        Some((path, mode)) => Err(Error::new(
            ErrorKind::Account,
            format!(
                "servers run as \"{}\", which cannot reach {}: {} is mode {:o}. \
                 Put the state directory somewhere it can reach (--state-dir /var/tmp/lab) or run chmod o+x {}",
                account.name,
                dir.display(),
                path.display(),
                mode,
                path.display()
            ),
        )),
    }
}
