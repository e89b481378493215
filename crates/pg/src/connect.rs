//! Connections: admin over the private unix socket, users over TCP.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use crate::error::{Error, ErrorKind};
use crate::{DATABASE, NodeSpec, SUPERUSER};

/// A superuser session over the node's unix socket (peer authentication);
/// over TCP with the superuser's password to a server that is not on this
/// machine (`NodeSpec::remote`).
pub async fn admin(node: &NodeSpec) -> Result<Client, Error> {
    if node.remote.is_some() {
        return user(node, SUPERUSER, node.credentials.superuser.expose()).await;
    }
    let mut config = Config::new();
    config
        .host_path(&node.socket_dir)
        .port(node.port)
        .user(SUPERUSER)
        .dbname(DATABASE)
        .application_name("prodhome")
        .connect_timeout(Duration::from_secs(5));
    connect(&config, &node.name).await
}

/// The admin session kept in `slot` while it is open, else a new one, for
/// the daemon's watchers that ask a node every tick. A new connection is
/// bounded by `within`: a paused server accepts the socket but never
/// answers, and a watcher must not hang on it. `None` when the node cannot
/// be reached now (ask again next tick).
pub async fn kept_admin<'a>(
    slot: &'a mut Option<Client>,
    node: &NodeSpec,
    within: Duration,
) -> Option<&'a Client> {
    if slot.as_ref().is_some_and(Client::is_closed) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = tokio::time::timeout(within, admin(node))
            .await
            .ok()
            .and_then(Result::ok);
    }
    slot.as_ref()
}

/// A session over TCP (127.0.0.1, or the remote server's host) as `role`
/// with `password`.
pub async fn user(node: &NodeSpec, role: &str, password: &str) -> Result<Client, Error> {
    let mut config = Config::new();
    config
        .host(node.tcp_host())
        .port(node.port)
        .user(role)
        .password(password)
        .dbname(DATABASE)
        .application_name("prodhome")
        .connect_timeout(Duration::from_secs(5));
    connect(&config, &node.name).await
}

/// The readiness probe: a real connection that runs a real query. A local
/// server whose `postmaster.pid` says it is still starting (or stopping)
/// is not connected to: that attempt would only be refused with a FATAL
/// in its log, and skipping it lets the probe run often while a server
/// starts without filling the log.
pub async fn probe(node: &NodeSpec) -> Result<(), Error> {
    if node.remote.is_none()
        && let Some(status) = crate::cluster::postmaster_status(&node.data_dir)
    {
        return Err(Error::new(
            ErrorKind::Connect,
            format!("{} is not ready yet (postmaster.pid: {status})", node.name),
        ));
    }
    let client = admin(node).await?;
    client
        .simple_query("select 1")
        .await
        .map(drop)
        .map_err(|e| crate::error::sql(&format!("probing {}", node.name), e))
}

async fn connect(config: &Config, node: &str) -> Result<Client, Error> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::with(ErrorKind::Connect, format!("could not connect to {node}: {e}"), e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
