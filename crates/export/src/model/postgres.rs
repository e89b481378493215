//! A Postgres node's container, the same under every engine: its
//! postgresql.conf and pg_hba.conf, the command that initialises a fresh
//! volume and starts the server, and the real query that says it is ready.

use super::{NODE_CONF_DIR, Node, PG_PORT, SECRETS_DIR};

/// The container's postgresql.conf: every address of the container's own
/// network (the engine's network is the boundary; host-side ports are
/// published on 127.0.0.1 by compose), logical WAL, the lab's settings last.
pub(super) fn node_conf(settings: &[(String, String)]) -> String {
    let mut conf = format!(
        "# Written by `prodhome export`: change the lab file and export again.\n\
         port = {PG_PORT}\n\
         listen_addresses = '*'\n\
         unix_socket_directories = '/var/run/postgresql'\n\
         hba_file = '{NODE_CONF_DIR}/pg_hba.conf'\n\
         wal_level = logical\n\
         max_wal_senders = 20\n\
         max_replication_slots = 20\n\
         wal_retrieve_retry_interval = '1s'\n\
         password_encryption = 'scram-sha-256'\n\
         log_timezone = 'UTC'\n\
         timezone = 'UTC'\n\
         lc_messages = 'C'\n\
         dynamic_shared_memory_type = posix\n\
         shared_preload_libraries = 'pg_stat_statements'\n"
    );
    if !settings.is_empty() {
        conf.push_str("# From the lab file:\n");
        for (key, value) in settings {
            conf.push_str(&format!("{key} = {value}\n"));
        }
    }
    conf
}

/// pg_hba.conf for every node: the container's own account over its
/// socket (healthchecks, initdb), everything else by password.
pub const PG_HBA: &str = "# Written by `prodhome export`.\n\
local all postgres peer\n\
host all all all scram-sha-256\n\
host replication all all scram-sha-256\n";

/// The shell command a node's container runs: initdb on a fresh volume
/// (the superuser's password from its secret file), then the server.
/// `$` is written as `dollar`: compose files interpolate `$NAME` from the
/// deploying shell, so they need `$$`.
pub fn node_command(node: &Node, dollar: &str) -> Vec<String> {
    let script = format!(
        "set -e; if [ ! -s \"$PGDATA/PG_VERSION\" ]; then \
         initdb -U postgres -E UTF8 --locale=C --auth-local=peer --auth-host=scram-sha-256 \
         --pwfile={SECRETS_DIR}/{secret} -D \"$PGDATA\"; fi; \
         exec postgres -D \"$PGDATA\" -c config_file={NODE_CONF_DIR}/postgresql.conf",
        secret = node.superuser_secret
    );
    vec!["/bin/sh".into(), "-c".into(), script.replace('$', dollar)]
}

/// A real query, as the container's own account over its socket.
pub fn node_healthcheck() -> Vec<String> {
    [
        "psql",
        "-h",
        "/var/run/postgresql",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-tAc",
        "select 1",
    ]
    .map(String::from)
    .to_vec()
}
