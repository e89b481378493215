//! The user's own migration tool (`migrate -- psql -f x.sql`, `-- bin/rails
//! db:migrate`), run with the node's connection in its environment, its
//! output passed through on stderr; retried when it failed on lock_timeout.

use std::time::Instant;

use tokio::process::Command;

use super::apply::{Applied, Attempt, Retry};
use crate::cmd::env::Connection;

/// The environment `prodhome env NODE` prints, plus PGAPPNAME (so the
/// tool's sessions are known as the migration's) and lock_timeout in
/// PGOPTIONS when asked for.
fn environment(conn: &Connection, retry: Retry) -> Vec<(String, String)> {
    let (user, db, port, password) = (pg::SUPERUSER, pg::DATABASE, conn.port, conn.password.expose());
    let mut env = vec![
        ("PGHOST".into(), "127.0.0.1".into()),
        ("PGPORT".into(), port.to_string()),
        ("PGUSER".into(), user.into()),
        ("PGPASSWORD".into(), password.into()),
        ("PGDATABASE".into(), db.into()),
        ("PGAPPNAME".into(), "prodhome-migrate".into()),
        (
            "DATABASE_URL".into(),
            format!("postgresql://{user}:{password}@127.0.0.1:{port}/{db}?application_name=prodhome-migrate"),
        ),
    ];
    if let Some(t) = retry.lock_timeout {
        env.push(("PGOPTIONS".into(), format!("-c lock_timeout={}", t.as_millis())));
    }
    env
}

pub(crate) async fn run(argv: &[String], conn: &Connection, retry: Retry) -> Applied {
    let mut applied = Applied {
        mode: "command".into(),
        ..Applied::default()
    };
    let env = environment(conn, retry);
    for attempt in 1..=retry.retries + 1 {
        let started = Instant::now();
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        let ms = started.elapsed().as_millis() as u64;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let error = format!(
                    "cannot run `{}`: {e}; is it installed and on PATH? (the command runs in {})",
                    argv[0],
                    std::env::current_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default()
                );
                applied.attempts.push(attempt_of(attempt, ms, None, &error));
                applied.error = Some(error);
                return applied;
            }
        };
        // The tool's own words, on stderr so --json's stdout stays one document.
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && !text.contains("ERROR:") {
            applied.attempts.push(attempt_of(attempt, ms, None, ""));
            applied.ok = true;
            return applied;
        }
        let lock = text.contains("55P03") || text.contains("lock timeout");
        let first_error = text
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or_else(|| text.lines().last().unwrap_or(""))
            .trim()
            .to_string();
        let error = format!("`{}` failed ({}): {first_error}", argv.join(" "), out.status);
        applied
            .attempts
            .push(attempt_of(attempt, ms, lock.then(|| "55P03".to_string()), &error));
        if !lock || attempt > retry.retries {
            applied.error = Some(error);
            return applied;
        }
    }
    applied
}

fn attempt_of(attempt: u32, ms: u64, sqlstate: Option<String>, error: &str) -> Attempt {
    Attempt {
        attempt,
        ok: error.is_empty(),
        ms,
        sqlstate,
        error: (!error.is_empty()).then(|| error.to_string()),
    }
}
