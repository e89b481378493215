//! `prodhome psql NODE [args]`: psql as the node's superuser over TCP.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::cmd::env::connection;
use crate::context::Context;

pub(crate) fn run(ctx: &Context, node: &str, args: &[String]) -> Result<i32> {
    let conn = connection(ctx, node)?;
    let psql = pg::find_binaries(ctx.plan.postgres_version)
        .map(|b| b.psql())
        .unwrap_or_else(|_| "psql".into());
    // The password goes in the environment, never on the command line
    // where `ps` would show it.
    let err = Command::new(&psql)
        .args(args)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", conn.port.to_string())
        .env("PGUSER", pg::SUPERUSER)
        .env("PGPASSWORD", conn.password.expose())
        .env("PGDATABASE", pg::DATABASE)
        .exec();
    Err(err).with_context(|| format!("running {}", psql.display()))
}
