//! Applying a replication's schema file to its nodes, statement by
//! statement: the publisher runs everything (COPY data through the COPY
//! protocol), subscribers only the definitions, since their initial sync
//! copies the rows and a second copy would collide with the first. Each node
//! takes the whole file in one transaction with the record of its hash, or
//! nothing of it.

use std::path::Path;

use bytes::Bytes;
use futures_util::SinkExt;
use sha2::{Digest, Sha256};
use sqlscript::{Kind, Statement};
use tokio_postgres::Client;
use tokio_postgres::error::ErrorPosition;

use crate::error::{Error, ErrorKind, sql};

/// A replication's schema file as the lab named it.
#[derive(Debug, Clone, Copy)]
pub struct SchemaSpec<'a> {
    /// Where the file is, for messages.
    pub path: &'a Path,
    pub sql: &'a str,
}

/// Which statements a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

/// The file cut into statements, or a located error naming the file.
pub(crate) fn statements<'a>(
    schema: &SchemaSpec<'a>,
    replication: &str,
) -> Result<Vec<Statement<'a>>, Error> {
    sqlscript::split(schema.sql).map_err(|e| {
        Error::new(
            ErrorKind::Sql,
            format!(
                "{}:{e} (the schema of replication {replication}; nothing was applied); {}",
                schema.path.display(),
                e.help()
            ),
        )
    })
}

/// Applies the schema once per node, recording its hash in the same
/// transaction, so a re-run skips it and a changed schema is caught.
pub(crate) async fn apply(
    client: &Client,
    node: &str,
    role: Role,
    replication: &str,
    schema: &SchemaSpec<'_>,
    statements: &[Statement<'_>],
) -> Result<(), Error> {
    let sha = hex(&Sha256::digest(schema.sql.as_bytes()));
    let what = format!("applying the schema of replication {replication} to {node}");
    if already_applied(client, node, replication, &sha, &what).await? {
        return Ok(());
    }
    client.batch_execute("BEGIN").await.map_err(|e| sql(&what, e))?;
    let result = run_all(client, node, role, schema, statements).await;
    let result = match result {
        Ok(()) => record(client, node, replication, &sha)
            .await
            .map_err(|e| sql(&what, e)),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    // The file's SETs (pg_dump empties search_path) must not reach the
    // statements prodhome runs next on this session.
    client
        .batch_execute("RESET ALL")
        .await
        .map_err(|e| sql(&what, e))?;
    result
}

async fn already_applied(
    client: &Client,
    node: &str,
    replication: &str,
    sha: &str,
    what: &str,
) -> Result<bool, Error> {
    let row = client
        .query_opt(
            "SELECT sha256, at::text FROM prodhome.applied WHERE node = $1 AND replication = $2",
            &[&node, &replication],
        )
        .await
        .map_err(|e| sql(what, e))?;
    let Some(row) = row else {
        return Ok(false);
    };
    let (applied, at): (String, String) = (row.get(0), row.get(1));
    if applied == sha {
        return Ok(true);
    }
    Err(Error::new(
        ErrorKind::Sql,
        format!(
            "the schema of replication {replication} changed since it was applied to {node} at {at}. \
             prodhome does not migrate: apply the change by hand (prodhome psql {node}) and restore the file, \
             or rebuild the lab with `prodhome down --purge` then `prodhome up`"
        ),
    ))
}

async fn record(
    client: &Client,
    node: &str,
    replication: &str,
    sha: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO prodhome.applied (node, replication, sha256) VALUES ($1, $2, $3)",
            &[&node, &replication, &sha],
        )
        .await?;
    client.batch_execute("COMMIT").await
}

async fn run_all(
    client: &Client,
    node: &str,
    role: Role,
    schema: &SchemaSpec<'_>,
    statements: &[Statement<'_>],
) -> Result<(), Error> {
    // Sequences are not replicated either: setval runs on the publisher
    // only. The file's own BEGIN/COMMIT would end the transaction that keeps
    // a node from taking half of it.
    let wanted = |s: &&Statement<'_>| match s.kind {
        Kind::Definition => true,
        Kind::Data => role == Role::Publisher,
        Kind::Transaction => false,
    };
    for statement in statements.iter().filter(wanted) {
        run(client, statement)
            .await
            .map_err(|e| refused(node, schema, statement, e))?;
    }
    Ok(())
}

async fn run(client: &Client, statement: &Statement<'_>) -> Result<(), tokio_postgres::Error> {
    let Some(data) = statement.copy_data else {
        return client.batch_execute(statement.sql).await;
    };
    const CHUNK: usize = 256 * 1024;
    let sink = client.copy_in::<_, Bytes>(statement.sql).await?;
    futures_util::pin_mut!(sink);
    for chunk in data.as_bytes().chunks(CHUNK) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.as_mut().finish().await.map(drop)
}

/// A statement the node refused: where in the file, which statement, the
/// server's message and SQLSTATE, and what to do.
fn refused(
    node: &str,
    schema: &SchemaSpec<'_>,
    statement: &Statement<'_>,
    e: tokio_postgres::Error,
) -> Error {
    let (line, column, reason) = match e.as_db_error() {
        Some(db) => {
            let (line, column) = match db.position() {
                Some(ErrorPosition::Original(at)) => locate(statement, *at as usize),
                _ => (statement.line, statement.column),
            };
            let mut reason = format!("{}: {}", db.code().code(), db.message());
            for (label, text) in [
                ("DETAIL", db.detail()),
                ("HINT", db.hint()),
                ("WHERE", db.where_()),
            ] {
                if let Some(text) = text {
                    reason.push_str(&format!("\n  {label}: {text}"));
                }
            }
            (line, column, reason)
        }
        None => (statement.line, statement.column, e.to_string()),
    };
    let file = schema.path.file_name().map(|f| f.to_string_lossy().into_owned());
    let file = file.unwrap_or_else(|| schema.path.display().to_string());
    Error::with(
        ErrorKind::Sql,
        format!(
            "{}:{line}:{column}: {node} refused this statement of the schema file: {}\n  {reason}\n\
             Nothing of {file} was applied to {node} (its transaction rolled back). \
             Fix the statement, then run `prodhome up` again",
            schema.path.display(),
            statement.summary(),
        ),
        e,
    )
}

/// The file position of the `at`th char (1-based) of `statement`.
fn locate(statement: &Statement<'_>, at: usize) -> (usize, usize) {
    let (mut line, mut column) = (statement.line, statement.column);
    for c in statement.sql.chars().take(at.saturating_sub(1)) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_positions_map_to_file_positions() {
        let text = "select 1;\n  create\n tabel x";
        let statements = sqlscript::split(text).unwrap();
        let create = &statements[1];
        assert_eq!(locate(create, 1), (2, 3));
        // "tabel" is the 9th char of "create\n tabel x".
        assert_eq!(locate(create, 9), (3, 2));
    }
}
