//! The lab's lock and the control API's token: what `up` takes and writes
//! before anything else, so that one daemon at a time runs a lab and only
//! its owner can drive it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use model::Secret;
use nix::fcntl::{Flock, FlockArg};

use crate::layout::{LockHolder, StateDir, write_atomic};

/// How long a new daemon waits for the lock of one that is exiting: a
/// killed daemon lets go of it once its last thread is gone.
const DYING_HOLDER_WAIT: Duration = Duration::from_secs(30);

/// Takes the lab's lock: at once when it is free, after a bounded wait when
/// its holder is exiting (`kill -9`, then `up` at once), never while a live
/// daemon holds it.
pub(crate) async fn lock(state: &StateDir) -> Result<Flock<std::fs::File>> {
    let path = state.lock_file();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = tokio::time::Instant::now() + DYING_HOLDER_WAIT;
    loop {
        file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, _)) => file,
        };
        match state.lock_holder() {
            LockHolder::Alive(pid) => {
                let who = match state.running_daemon() {
                    Some(d) => format!(" (pid {}, api {})", d.pid, d.api),
                    None if pid != 0 => format!(" (pid {pid}, still starting)"),
                    None => String::new(),
                };
                bail!(
                    "another prodhome daemon is already running this lab{who}; use `prodhome status`, or `prodhome down` to stop it"
                );
            }
            LockHolder::Dying(pid) if tokio::time::Instant::now() >= deadline => bail!(
                "{} is still locked by pid {pid}, a prodhome daemon that is exiting but not gone after {:?}; \
                 see `cat /proc/{pid}/status`, then run `prodhome up` again",
                path.display(),
                DYING_HOLDER_WAIT
            ),
            // Exiting, or just let go: try again in a moment.
            LockHolder::Dying(_) | LockHolder::Free => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A fresh token for the control API, in `api.token` (0600) before the API
/// answers: only the account that started the lab can read it, so only it
/// can change the lab. A new one on every start: a token read from an
/// earlier run is worth nothing.
pub(crate) fn write_token(state: &StateDir) -> Result<Secret> {
    let token = Secret::generate(48).context("reading random bytes for the control API's token")?;
    let path = state.api_token();
    write_atomic(&path, token.expose().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}
