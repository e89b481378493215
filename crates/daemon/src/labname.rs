//! One running lab per name on the Docker Engine. A lab's containers,
//! network and volumes are named after the lab (`prodhome-LAB-NODE`), so a
//! second lab of the same name, from another directory, would take them
//! over: its `up` removes a container of that name before creating its
//! own, and the first lab's server would be gone. Each daemon of a lab
//! that uses the engine holds `TMP/prodhome-labs/LAB.lock` (flocked while
//! it lives, however it dies, and holding its state directory), and a
//! second is refused, naming the first; `down` of a lab whose name a live
//! daemon holds leaves that lab's containers alone ([`holder`]).

use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Result, bail};
use nix::fcntl::{Flock, FlockArg};

/// The claims this process holds, until it exits.
static CLAIMED: std::sync::Mutex<Vec<Flock<std::fs::File>>> = std::sync::Mutex::new(Vec::new());

/// The lock file of `lab`'s name, opened (made when missing).
fn open(lab: &str) -> Option<std::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join("prodhome-labs");
    if std::fs::create_dir(&dir).is_ok() {
        // Like /tmp itself: every account may add its own lock files.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join(format!("{lab}.lock")))
        .ok()
}

/// The state directory of the live daemon that holds `lab`'s name, if one
/// does.
pub(crate) fn holder(lab: &str) -> Option<String> {
    let file = open(lab)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        // Free: let go at once.
        Ok(_) => None,
        Err((mut file, _)) => Some(held_by(&mut file)),
    }
}

/// The state directory a held lock file names.
fn held_by(file: &mut std::fs::File) -> String {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    holder
}

/// Claims `lab`'s name on this machine's engine for the daemon of `state`;
/// fails, naming the lab that holds it, while another daemon does. Best
/// effort where the shared directory cannot be used.
pub(crate) fn claim(lab: &str, state: &Path) -> Result<()> {
    let Some(file) = open(lab) else {
        return Ok(());
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = lock.write_all(state.display().to_string().as_bytes());
            CLAIMED.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            Ok(())
        }
        Err((mut file, _)) => {
            let holder = match held_by(&mut file) {
                holder if holder.is_empty() => "another directory".into(),
                holder => holder,
            };
            bail!(
                "a lab named {lab} already runs on this Docker Engine, from {holder}: its containers are named after the lab \
                 (prodhome-{lab}-NODE), so two labs of one name cannot run at once. Give this one another `name` in its lab \
                 file, or stop that one (`prodhome down` there)"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_of_a_name_is_refused_naming_the_first() {
        let lab = format!("claimtest_{}", std::process::id());
        claim(&lab, Path::new("/labs/first/.prodhome")).expect("first claim");
        // flock is per open file: a second open in this process conflicts
        // as another daemon's would.
        let err = claim(&lab, Path::new("/labs/second/.prodhome"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("from /labs/first/.prodhome"), "{err}");
        assert!(err.contains("another `name`"), "{err}");
        assert_eq!(holder(&lab).as_deref(), Some("/labs/first/.prodhome"));
        assert_eq!(holder(&format!("{lab}_free")), None);
    }
}
