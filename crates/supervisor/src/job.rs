//! A short-lived command run to completion within a time limit: the exec
//! probe and the daemon's alert command. One helper, so both get the same
//! care: the command runs in a process group of its own, its stdin gets a
//! payload (or nothing), its stderr is kept for the message, and at the
//! limit — or when the caller's future is dropped — the whole group is
//! killed, not just the direct child.

use std::io;
use std::process::Stdio;
use std::time::Duration;

use model::Exit;
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::timeout;

use crate::process::{signal_group, to_exit};

/// Bytes of stderr kept: the end of it, where the reason for a failure is.
const STDERR_KEPT: usize = 4096;

/// A command that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub exit: Exit,
    /// The last non-empty line of stderr, trimmed.
    pub last_stderr_line: Option<String>,
    /// The command's pid, which is also its process group: a caller that
    /// wants what it left running gone signals the group.
    pub pid: u32,
}

/// A command that did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("could not run it: {0}")]
    Spawn(#[source] io::Error),
    /// Killed (its whole group) at the limit.
    #[error("still running after {0:?}; killed")]
    TimedOut(Duration),
}

/// Runs `cmd` (program, args, env, cwd and account as the caller set them)
/// with `stdin` written to it (`None`: stdin is /dev/null; a command that
/// does not read its input is fine) and stdout discarded, until it exits or
/// `limit` passes.
pub async fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Finished, JobError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(JobError::Spawn)?;
    let pid = child.id().unwrap_or(0);
    // Killed with everything it started at the limit, also when the
    // caller's future is dropped mid-way (a unit stopped while its probe ran).
    let group = KillGroup(pid);
    let input = child.stdin.take();
    let stderr = child.stderr.take();
    let run = async {
        if let (Some(mut pipe), Some(bytes)) = (input, stdin) {
            // A closed pipe is fine: the command need not read its input.
            let _ = pipe.write_all(bytes).await;
        }
        let said = match stderr {
            Some(stderr) => tail(stderr).await,
            None => Vec::new(),
        };
        (child.wait().await, said)
    };
    let (status, said) = timeout(limit, run).await.map_err(|_| JobError::TimedOut(limit))?;
    group.disarm();
    let said = String::from_utf8_lossy(&said);
    Ok(Finished {
        exit: to_exit(status),
        last_stderr_line: said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string()),
        pid,
    })
}

/// Reads `pipe` to its end, keeping the last [`STDERR_KEPT`] bytes: reading
/// on keeps a chatty command from blocking on a full pipe.
async fn tail(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > STDERR_KEPT {
            kept.drain(..kept.len() - STDERR_KEPT);
        }
    }
    kept
}

/// SIGKILLs a process group when dropped.
struct KillGroup(u32);

impl KillGroup {
    /// The command ended by itself: what it left running is the caller's
    /// business.
    fn disarm(mut self) {
        self.0 = 0;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if self.0 != 0 {
            let _ = signal_group(self.0, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[tokio::test]
    async fn the_payload_goes_in_and_the_last_stderr_line_comes_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("got");
        let script = format!(
            "cat > {}; echo one >&2; echo two >&2; echo >&2; exit 3",
            file.display()
        );
        let done = run_with_timeout(sh(&script), Some(b"payload\n"), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(done.exit.code, Some(3));
        assert_eq!(done.last_stderr_line.as_deref(), Some("two"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "payload\n");
    }

    #[tokio::test]
    async fn at_the_limit_the_whole_group_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let ran = run_with_timeout(sh(&script), None, Duration::from_secs(2)).await;
        assert!(
            matches!(ran, Err(JobError::TimedOut(limit)) if limit == Duration::from_secs(2)),
            "{ran:?}"
        );
        let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        testkit::poll_async("the grandchild to be killed", Duration::from_secs(10), || async {
            (!crate::alive(pid)).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn a_program_that_is_not_there_cannot_be_run() {
        let ran = run_with_timeout(Command::new("/nonexistent/x"), None, Duration::from_secs(5)).await;
        let error = ran.unwrap_err();
        assert!(matches!(error, JobError::Spawn(_)), "{error:?}");
        assert!(error.to_string().starts_with("could not run it: "), "{error}");
    }
}
