//! The configuration files prodhome owns in each data directory. They are
//! rewritten on every `up` from the lab, so the lab file stays the one place
//! to change a setting.

use crate::account::Account;
use crate::error::{Error, ErrorKind};
use crate::{NodeSpec, SUPERUSER};

/// Writes postgresql.conf, pg_hba.conf and pg_ident.conf for `node`.
pub fn write_config(node: &NodeSpec, account: &Account) -> Result<(), Error> {
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| account.name.clone());
    write(node, account, "postgresql.conf", &postgresql_conf(node))?;
    write(node, account, "pg_hba.conf", HBA)?;
    write(node, account, "pg_ident.conf", &ident(&me, &account.name))
}

/// The server's log directory, relative to its data directory.
pub(crate) const LOG_DIRECTORY: &str = "log";

/// How the server logs. The collector writes jsonlog (every field apart,
/// the SQLSTATE included) for `pglog` and `prodhome logs`, one file per
/// start and per rotation; only what the postmaster prints before its
/// collector runs (a bad setting, a port in use) goes to the supervisor's
/// file. Statements over 250 ms are logged: well above what the lab's hum
/// runs in (a few ms), well below what a person notices, and few enough
/// that logging them costs nothing. A lab can set any of these in its
/// node settings (they come last).
const LOGGING: &str = "logging_collector = on\n\
     log_destination = 'jsonlog'\n\
     log_directory = 'log'\n\
     log_filename = 'postgresql-%Y%m%d-%H%M%S.log'\n\
     log_file_mode = 0600\n\
     log_rotation_age = '1d'\n\
     log_rotation_size = '64MB'\n\
     log_line_prefix = '%m [%p] %q%u@%d '\n\
     log_lock_waits = on\n\
     log_checkpoints = on\n\
     log_autovacuum_min_duration = '250ms'\n\
     log_min_duration_statement = '250ms'\n\
     shared_preload_libraries = 'pg_stat_statements'\n\
     pg_stat_statements.track = 'top'\n";

fn postgresql_conf(node: &NodeSpec) -> String {
    let mut conf = format!(
        "# Written by prodhome on every `up`: change the lab file, not this file.\n\
         port = {port}\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{socket}'\n\
         unix_socket_permissions = 0700\n\
         wal_level = logical\n\
         max_wal_senders = 20\n\
         max_replication_slots = 20\n\
         # A subscriber's apply worker that failed (a column DDL follow has\n\
         # not added yet) retries after this: 1 s, not 5 s.\n\
         wal_retrieve_retry_interval = '1s'\n\
         password_encryption = 'scram-sha-256'\n\
         log_timezone = 'UTC'\n\
         timezone = 'UTC'\n\
         datestyle = 'iso, mdy'\n\
         lc_messages = 'C'\n\
         dynamic_shared_memory_type = posix\n",
        port = node.port,
        socket = node.socket_dir.display().to_string().replace('\'', "''"),
    );
    conf.push_str(LOGGING);
    if !node.settings.is_empty() {
        conf.push_str("# From the lab file:\n");
        for (key, value) in &node.settings {
            conf.push_str(&format!("{key} = {value}\n"));
        }
    }
    conf
}

// Local (socket) connections: only the superuser, only for the OS users in
// the `prodhome` map (whoever runs prodhome, and the server account). The
// socket directory is private too. TCP: passwords, scram only.
const HBA: &str = "# Written by prodhome.\n\
local all postgres peer map=prodhome\n\
host all all 127.0.0.1/32 scram-sha-256\n";

fn ident(me: &str, server_account: &str) -> String {
    let mut out = format!("# Written by prodhome.\nprodhome {me} {SUPERUSER}\n");
    if server_account != me {
        out.push_str(&format!("prodhome {server_account} {SUPERUSER}\n"));
    }
    out
}

fn write(node: &NodeSpec, account: &Account, name: &str, text: &str) -> Result<(), Error> {
    let path = node.data_dir.join(name);
    let owner = account.switch.then_some((account.uid, account.gid));
    model::write_atomic_owned(&path, text.as_bytes(), 0o600, owner)
        .map_err(|e| Error::with(ErrorKind::Init, format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credentials;
    use model::Secret;

    #[test]
    fn conf_listens_on_loopback_only_and_carries_lab_settings_last() {
        let node = NodeSpec {
            name: "publisher".into(),
            data_dir: "/tmp/x/data".into(),
            socket_dir: "/tmp/x/run".into(),
            port: 15432,
            settings: vec![("max_connections".into(), "200".into())],
            credentials: Credentials {
                superuser: Secret::new("a"),
                replication: Secret::new("b"),
            },
            remote: None,
        };
        let conf = postgresql_conf(&node);
        assert!(conf.contains("listen_addresses = '127.0.0.1'\n"));
        assert!(conf.contains("port = 15432\n"));
        assert!(conf.contains("wal_level = logical\n"));
        assert!(conf.ends_with("max_connections = 200\n"));
        for want in [
            "log_destination = 'jsonlog'\n",
            "logging_collector = on\n",
            "log_lock_waits = on\n",
        ] {
            assert!(conf.contains(want), "{want}");
        }
    }
}
