//! SQL run on a cluster no server runs on: `postgres --single`, as the
//! server account, with the script on its standard input. No port, no
//! socket, no connection; it ends with a shutdown checkpoint, so the
//! cluster it leaves can be copied as it is.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::DATABASE;
use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};

/// Runs `sql` (statements separated by semicolons) in one transaction on
/// the stopped cluster at `data_dir`. Any ERROR rolls the whole script
/// back and is returned: single-user mode itself goes on to its end and
/// exits 0 after one.
pub(crate) async fn run(bins: &Binaries, account: &Account, data_dir: &Path, sql: &str) -> Result<(), Error> {
    let mut cmd = Command::new(bins.tool("postgres"));
    // -j: a command ends at a semicolon followed by an empty line, so the
    // script is one command (one implicit transaction) once its own empty
    // lines are gone.
    cmd.arg("--single")
        .arg("-j")
        .arg("-D")
        .arg(data_dir)
        .args([
            "-c",
            "log_min_messages=warning",
            "-c",
            "client_min_messages=warning",
        ])
        .arg(DATABASE)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if account.switch {
        cmd.uid(account.uid).gid(account.gid);
    }
    let failed = |e: std::io::Error| {
        Error::with(
            ErrorKind::Init,
            format!(
                "could not run {} --single on {}",
                bins.tool("postgres").display(),
                data_dir.display()
            ),
            e,
        )
    };
    let mut child = cmd.spawn().map_err(failed)?;
    let mut stdin = child.stdin.take().expect("piped");
    let script = one_command(sql);
    let fed = async move {
        stdin.write_all(script.as_bytes()).await?;
        stdin.shutdown().await
    };
    let (fed, out) = tokio::join!(fed, child.wait_with_output());
    let out = out.map_err(failed)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problem = stderr
        .lines()
        .find(|l| l.contains("ERROR:") || l.contains("FATAL:") || l.contains("PANIC:"));
    if out.status.success() && problem.is_none() && fed.is_ok() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Init,
        format!(
            "postgres --single on {} failed ({}): {}",
            data_dir.display(),
            out.status,
            problem.unwrap_or(stderr.trim())
        ),
    ))
}

/// `sql` as one `-j` command: without empty lines, then ended by one.
fn one_command(sql: &str) -> String {
    let mut script: String = sql
        .lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|l| [l, "\n"])
        .collect();
    script.push_str(";\n\n");
    script
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_script_is_one_command_ended_by_an_empty_line() {
        let script = super::one_command("CREATE TABLE a (x int);\n\n   \nCREATE TABLE b (y int);\n");
        assert_eq!(script, "CREATE TABLE a (x int);\nCREATE TABLE b (y int);\n;\n\n");
        assert_eq!(script.matches(";\n\n").count(), 1);
    }
}
