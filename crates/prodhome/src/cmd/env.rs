//! `prodhome env NODE`: shell exports to reach a node.

use anyhow::{Result, anyhow};
use model::Secret;

use crate::context::Context;

pub(crate) struct Connection {
    pub(crate) port: u16,
    pub(crate) password: Secret,
}

/// The port and superuser password of `node`, from the state directory.
pub(crate) fn connection(ctx: &Context, node: &str) -> Result<Connection> {
    ctx.check_node(node)?;
    let ports = daemon::ports::load(&ctx.state);
    let port = ctx
        .plan
        .node(node)
        .and_then(|n| n.port)
        .or_else(|| ports.get(node).copied())
        .ok_or_else(|| anyhow!("node {node} has no port yet: run `prodhome up` first"))?;
    let secrets = daemon::secrets::load(&ctx.state)?;
    let creds = secrets
        .get(node)
        .ok_or_else(|| anyhow!("no password for {node} yet: run `prodhome up` first"))?;
    Ok(Connection {
        port,
        password: creds.superuser.clone(),
    })
}

pub(crate) fn run(ctx: &Context, node: &str) -> Result<i32> {
    let conn = connection(ctx, node)?;
    let (user, db, port, password) = (pg::SUPERUSER, pg::DATABASE, conn.port, conn.password.expose());
    println!("export PGHOST=127.0.0.1");
    println!("export PGPORT={port}");
    println!("export PGUSER={user}");
    println!("export PGPASSWORD={password}");
    println!("export PGDATABASE={db}");
    println!("export DATABASE_URL=postgresql://{user}:{password}@127.0.0.1:{port}/{db}");
    Ok(0)
}
