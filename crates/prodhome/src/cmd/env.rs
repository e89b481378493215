//! `prodhome env NODE`: shell exports to reach a node.

use anyhow::Result;
use model::Secret;

use crate::context::Context;

pub(crate) struct Connection {
    pub(crate) port: u16,
    pub(crate) password: Secret,
}

/// The port and superuser password of `node`, from the state directory.
pub(crate) fn connection(ctx: &Context, node: &str) -> Result<Connection> {
    ctx.check_node(node)?;
    let lab = ctx.offline();
    Ok(Connection {
        port: lab.required_port(node)?,
        password: lab.superuser_password(node)?,
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
