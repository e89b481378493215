//! Running a command inside a container (`pg_isready`, `psql` for a probe)
//! and collecting its output and exit code.

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use crate::{Engine, EngineError};

/// What an exec printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

impl Engine {
    /// Runs `cmd` in the running container `name` and waits for it to end.
    pub async fn exec(&self, name: &str, cmd: &[&str]) -> Result<ExecOutput, EngineError> {
        let what = || format!("run `{}` in {name}", cmd.join(" "));
        let options = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(name, options)
            .await
            .map_err(EngineError::api(what()))?;
        let started = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(EngineError::api(what()))?;
        let mut out = ExecOutput::default();
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(item) = output.next().await {
                match item.map_err(EngineError::api(what()))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        out.stderr.push_str(&String::from_utf8_lossy(&message))
                    }
                    other => out.stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
                }
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(EngineError::api(what()))?;
        out.code = inspect.exit_code.unwrap_or(-1);
        Ok(out)
    }

    /// True when Postgres in container `name` accepts connections.
    pub async fn pg_ready(&self, name: &str) -> Result<bool, EngineError> {
        let out = self
            .exec(name, &["pg_isready", "-q", "-h", "/var/run/postgresql"])
            .await?;
        Ok(out.success())
    }
}
