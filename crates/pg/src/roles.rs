//! First-contact setup on every node: passwords, the replication role, and
//! prodhome's own small schema. Idempotent: run on every `up`.

use tokio_postgres::Client;

use crate::error::{Error, sql};
use crate::{Credentials, REPLICATION_ROLE, SUPERUSER};

/// Sets the generated passwords, creates the least-privilege replication
/// role (LOGIN REPLICATION, nothing else; SELECT is granted per published
/// table), creates pg_stat_statements, and creates the `prodhome` schema with the probe and
/// schema-applied tables and the DDL queue (see [`crate::ddl`]).
pub async fn bootstrap(client: &Client, node: &str, creds: &Credentials) -> Result<(), Error> {
    // Passwords travel as SCRAM verifiers computed here, so the plain text
    // never reaches the server, its logs or pg_stat_activity. Each is 4,096
    // rounds of PBKDF2: on a blocking thread, so that the nodes' bootstraps
    // (run at once) do not queue behind each other's on the runtime.
    let (su, repl) = (creds.superuser.clone(), creds.replication.clone());
    let (su, repl) = tokio::task::spawn_blocking(move || {
        let verifier =
            |secret: &model::Secret| postgres_protocol::password::scram_sha_256(secret.expose().as_bytes());
        (verifier(&su), verifier(&repl))
    })
    .await
    .map_err(|e| {
        Error::new(
            crate::error::ErrorKind::Sql,
            format!("computing the password verifiers: {e}"),
        )
    })?;
    // log_min_duration_statement stays off for the session: the duration
    // line of a slow batch would quote it whole, verifiers included.
    let script = format!(
        "SET log_statement = 'none';
         SET log_min_error_statement = panic;
         SET log_min_duration_statement = -1;
         ALTER ROLE {SUPERUSER} PASSWORD '{su}';
         DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{REPLICATION_ROLE}') THEN
             CREATE ROLE {REPLICATION_ROLE} LOGIN REPLICATION;
           END IF;
         END $$;
         ALTER ROLE {REPLICATION_ROLE} PASSWORD '{repl}';
         CREATE SCHEMA IF NOT EXISTS prodhome;
         -- The top statements by time on the dashboard; preloaded by conf.rs.
         CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         CREATE TABLE IF NOT EXISTS prodhome.probe (
           id bigserial PRIMARY KEY,
           replication text NOT NULL,
           at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS prodhome.applied (
           node text NOT NULL,
           replication text NOT NULL,
           sha256 text NOT NULL,
           at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (node, replication));
         {ddl}
         GRANT USAGE ON SCHEMA prodhome TO {REPLICATION_ROLE};
         GRANT SELECT ON ALL TABLES IN SCHEMA prodhome TO {REPLICATION_ROLE};
         RESET log_min_error_statement;",
        ddl = crate::ddl::SCHEMA_SQL,
    );
    client
        .batch_execute(&script)
        .await
        .map_err(|e| sql(&format!("setting up roles on {node}"), e))
}
