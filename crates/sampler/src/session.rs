//! The sampler's connection to one node: opened with timeouts that keep
//! it from ever holding the lab up, with every collector statement prepared
//! once, so a cycle is only Bind/Execute round trips, pipelined.

use std::collections::HashMap;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::failure::Failure;
use crate::options::NodeTarget;

/// What the sampler's sessions are called in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "prodhome-sampler";

pub(crate) struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// This session's backend: its parent is the postmaster.
    pub(crate) backend_pid: u32,
}

impl Session {
    /// Connects and prepares `statements`.
    pub(crate) async fn connect(
        node: &NodeTarget,
        statement_timeout: Duration,
        statements: &[&'static str],
    ) -> Result<Session, Failure> {
        let ms = statement_timeout.as_millis().max(1);
        let mut config = Config::new();
        config
            .host(&node.host)
            .port(node.port)
            .user(&node.user)
            .dbname(&node.dbname)
            .application_name(APPLICATION_NAME)
            .connect_timeout(statement_timeout.max(Duration::from_secs(1)))
            // Every statement and every lock wait is bounded; a heartbeat
            // commit does not wait for the disk; no JIT for tiny queries.
            .options(format!(
                "-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={} \
                 -c synchronous_commit=off -c jit=off",
                ms * 10
            ));
        if !node.password.expose().is_empty() {
            config.password(node.password.expose());
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| {
            Failure::new(format!(
                "could not connect to {}:{}: {}",
                node.host,
                node.port,
                describe(&e)
            ))
        })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let prepared = futures_util::future::join_all(statements.iter().map(|sql| client.prepare(sql))).await;
        let mut map = HashMap::new();
        for (sql, stmt) in statements.iter().zip(prepared) {
            let stmt =
                stmt.map_err(|e| Failure::new(format!("preparing a sampler query: {}", describe(&e))))?;
            map.insert(*sql, stmt);
        }
        let backend_pid = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| Failure::new(describe(&e)))?
            .get::<_, i32>(0) as u32;
        Ok(Session {
            client,
            statements: map,
            backend_pid,
        })
    }

    /// Runs a prepared statement.
    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Failure> {
        let stmt = self
            .statements
            .get(sql)
            .ok_or_else(|| Failure::new("internal: a sampler query was not prepared"))?;
        self.client
            .query(stmt, params)
            .await
            .map_err(|e| Failure::new(describe(&e)))
    }

    /// Runs a statement that is not prepared with the session, because it
    /// may not work on every node (a view of an extension that is not
    /// installed would make every prepared statement fail). The failure
    /// keeps the server's SQLSTATE.
    pub(crate) async fn query_unprepared(&self, sql: &str) -> Result<Vec<Row>, Failure> {
        self.client.query(sql, &[]).await.map_err(|e| Failure {
            message: describe(&e),
            sqlstate: e.code().map(|c| c.code().to_string()),
        })
    }

    /// Runs SQL written by the lab's author, all values as text.
    pub(crate) async fn simple_query(
        &self,
        sql: &str,
    ) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, Failure> {
        self.client
            .simple_query(sql)
            .await
            .map_err(|e| Failure::new(describe(&e)))
    }

    /// False once the server closed the connection (a restart, a crash).
    pub(crate) fn is_open(&self) -> bool {
        !self.client.is_closed()
    }
}

/// The server's own message (with its SQLSTATE) rather than tokio-postgres's
/// generic "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
