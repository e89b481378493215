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
        && let Some(status) = postmaster_status(&node.data_dir)
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

/// The status a server's `postmaster.pid` gives when it is "starting" or
/// "stopping"; `None` when it is ready, the file cannot be read, or it has
/// no status line yet (then only a connection tells).
fn postmaster_status(data_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    // Line 8 (LOCK_FILE_LINE_PM_STATUS), padded with spaces.
    let status = text.lines().nth(7)?.trim();
    matches!(status, "starting" | "stopping").then(|| status.to_owned())
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

#[cfg(test)]
mod tests {
    use super::postmaster_status;

    /// `postmaster.pid` as Postgres 15 writes it: pid, data directory,
    /// start time, port, socket directory, listen address, shared memory
    /// key, then the status padded to 8 characters.
    fn pid_file(dir: &std::path::Path, status: Option<&str>) {
        let mut text = format!(
            "4242\n{}\n1796226937\n5432\n/tmp\n127.0.0.1\n  5432001      7\n",
            dir.display()
        );
        if let Some(status) = status {
            text.push_str(&format!("{status:<8}\n"));
        }
        std::fs::write(dir.join("postmaster.pid"), text).unwrap();
    }

    #[test]
    fn a_starting_or_stopping_server_is_told_by_its_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(postmaster_status(dir.path()), None, "no file: connect to tell");
        pid_file(dir.path(), None);
        assert_eq!(postmaster_status(dir.path()), None, "no status line yet");
        pid_file(dir.path(), Some("starting"));
        assert_eq!(postmaster_status(dir.path()).as_deref(), Some("starting"));
        pid_file(dir.path(), Some("stopping"));
        assert_eq!(postmaster_status(dir.path()).as_deref(), Some("stopping"));
        pid_file(dir.path(), Some("ready"));
        assert_eq!(postmaster_status(dir.path()), None);
        pid_file(dir.path(), Some("standby"));
        assert_eq!(postmaster_status(dir.path()), None);
    }
}
