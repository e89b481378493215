//! initdb of a new cluster, as prodhome makes every cluster (or the
//! template its clusters are copied from): UTF-8, the C locale, peer for
//! the local socket and SCRAM over TCP. `--no-sync`: only a power cut in
//! the seconds after could lose the new files, and syncing them all would
//! slow every first `up`.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::SUPERUSER;
use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};
use crate::staging::{rename, sibling};

/// initdb into `data_dir` (which must not exist), as `account`; a failure
/// leaves nothing at `data_dir`.
pub(crate) async fn initdb(bins: &Binaries, account: &Account, data_dir: &Path) -> Result<(), Error> {
    let tmp = sibling(data_dir, "initdb");
    fresh_dir(&tmp, account)?;
    let mut cmd = Command::new(bins.tool("initdb"));
    cmd.arg("-D")
        .arg(&tmp)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--auth-local=peer"])
        .args(["--auth-host=scram-sha-256", "--no-instructions", "--no-sync"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if account.switch {
        cmd.uid(account.uid).gid(account.gid);
    }
    let out = cmd.output().await.map_err(|e| {
        Error::with(
            ErrorKind::Init,
            format!("could not run {}", bins.tool("initdb").display()),
            e,
        )
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::new(
            ErrorKind::Init,
            format!(
                "initdb for {} failed ({}):\n{}",
                data_dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    rename(&tmp, data_dir)
}

fn fresh_dir(dir: &Path, account: &Account) -> Result<(), Error> {
    let io = |e| Error::with(ErrorKind::Init, format!("preparing {}", dir.display()), e);
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(io)?;
    account.own(dir).map_err(io)
}
