//! DDL that follows the publisher. Logical replication carries rows, not
//! schema changes, so a publisher records its own DDL and the daemon's
//! follower replays it on subscribers.
//!
//! Recording (on the publisher): an event trigger on `ddl_command_end` and
//! `sql_drop` writes one row per command into `prodhome.ddl_queue`: the
//! whole query string (`current_query()`), the command tags, the objects,
//! the tables they belong to, the transaction, the statement's start and
//! the `search_path`. Every recording transaction first takes one
//! transaction-scoped advisory lock, so DDL transactions commit in queue id
//! order and a reader that has seen id N never sees a smaller id appear
//! later. prodhome's own sessions (`application_name` `prodhome` and
//! `prodhome-hum`: the schema file, hum's tables, which prodhome brings to
//! subscribers itself), sessions with `prodhome.ddl_follow = off`, temporary
//! objects and prodhome's own schema are not recorded.
//!
//! Replaying (on each subscriber, [`apply`]): rows of one query string are
//! one [`Change`]; its DDL statements (cut with `sqlscript`, so
//! `psql -c "ALTER …; INSERT …"` replays the ALTER only, once) run in one
//! transaction together with the new last applied id in
//! `prodhome.ddl_applied`, so a restart neither skips nor repeats. A
//! statement that cannot run in a transaction block (`CONCURRENTLY`) runs
//! on its own, followed by the record.
//!
//! Order: the follower applies a change shortly after it commits on the
//! publisher. Rows that need it (a new column) may reach the subscriber
//! first; its apply worker then fails, and retries after
//! `wal_retrieve_retry_interval` (1 s here) from the same position, by when
//! the column exists: nothing is lost, the rows arrive late.

use std::time::SystemTime;

use sqlscript::Kind;
use tokio_postgres::Client;

use crate::REPLICATION_ROLE;
use crate::error::{Error, ErrorKind, sql};
use crate::replication::{ident, qualified};

/// The queue, the record of what each subscriber applied, and the trigger
/// function; created on every node by bootstrap.
pub(crate) const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS prodhome.ddl_queue (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  statement_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  tags text[] NOT NULL,
  objects text[] NOT NULL,
  tables text[] NOT NULL,
  statement text NOT NULL,
  txid bigint NOT NULL DEFAULT txid_current(),
  search_path text NOT NULL DEFAULT current_setting('search_path'));
CREATE TABLE IF NOT EXISTS prodhome.ddl_applied (
  node text NOT NULL,
  publisher text NOT NULL,
  last_id bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, publisher));
CREATE OR REPLACE FUNCTION prodhome.ddl_record() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
  tags text[] := '{}';
  objects text[] := '{}';
  tables text[] := '{}';
  tbl text;
BEGIN
  IF current_setting('application_name') IN ('prodhome', 'prodhome-hum')
     OR coalesce(current_setting('prodhome.ddl_follow', true), '') = 'off' THEN
    RETURN;
  END IF;
  IF TG_EVENT = 'sql_drop' THEN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
      CONTINUE WHEN NOT r.original OR r.is_temporary OR r.schema_name = 'prodhome';
      tags := tags || ('DROP ' || upper(r.object_type));
      objects := objects || r.object_identity;
      IF r.object_type = 'table' THEN
        tables := tables || (r.schema_name || '.' || r.object_name);
      END IF;
    END LOOP;
  ELSE
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
      CONTINUE WHEN r.in_extension OR r.schema_name = 'prodhome' OR r.schema_name LIKE 'pg_temp%';
      tags := tags || r.command_tag;
      objects := objects || coalesce(r.object_identity, r.object_type);
      IF r.classid = 'pg_class'::regclass THEN
        SELECT n.nspname || '.' || t.relname INTO tbl
        FROM pg_class c
        LEFT JOIN pg_index i ON i.indexrelid = c.oid
        JOIN pg_class t ON t.oid = coalesce(i.indrelid, c.oid)
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.oid = r.objid AND t.relkind IN ('r', 'p') AND t.relpersistence <> 't';
        IF tbl IS NOT NULL AND NOT tbl = ANY (tables) THEN
          tables := tables || tbl;
        END IF;
      END IF;
    END LOOP;
  END IF;
  IF cardinality(tags) = 0 THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('prodhome.ddl_queue'));
  INSERT INTO prodhome.ddl_queue (tags, objects, tables, statement)
  VALUES (tags, objects, tables, current_query());
  PERFORM pg_notify('prodhome_ddl', '');
END
$fn$;
"#;

/// Creates (`record = true`) or drops the event triggers on a publisher.
pub async fn install(client: &Client, node: &str, record: bool) -> Result<(), Error> {
    let what = format!("setting up DDL recording on {node}");
    let script = if record {
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'prodhome_ddl_end') THEN
             CREATE EVENT TRIGGER prodhome_ddl_end ON ddl_command_end EXECUTE FUNCTION prodhome.ddl_record();
           END IF;
           IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'prodhome_ddl_drop') THEN
             CREATE EVENT TRIGGER prodhome_ddl_drop ON sql_drop EXECUTE FUNCTION prodhome.ddl_record();
           END IF;
         END $$"
    } else {
        "DROP EVENT TRIGGER IF EXISTS prodhome_ddl_end; DROP EVENT TRIGGER IF EXISTS prodhome_ddl_drop"
    };
    client.batch_execute(script).await.map_err(|e| sql(&what, e))
}

/// One query string's DDL as the publisher recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The queue rows it spans.
    pub first_id: i64,
    pub last_id: i64,
    pub tags: Vec<String>,
    pub objects: Vec<String>,
    /// `schema.table` of every table it touched.
    pub tables: Vec<String>,
    /// The whole query string, as the client sent it.
    pub query: String,
    pub search_path: String,
}

impl Change {
    /// The tables this change created.
    pub fn created_tables(&self) -> bool {
        self.tags.iter().any(|t| t == "CREATE TABLE")
    }

    /// A drop of something that is not a table (an index): the object may
    /// not exist on a subscriber that replicates only some tables.
    pub fn drops_index(&self) -> bool {
        self.tables.is_empty() && self.tags.iter().any(|t| t == "DROP INDEX")
    }

    /// The query string in one short line for events.
    pub fn summary(&self) -> String {
        let flat: String = self.query.split_whitespace().collect::<Vec<_>>().join(" ");
        match flat.char_indices().nth(160) {
            Some((cut, _)) => format!("{}…", &flat[..cut]),
            None => flat,
        }
    }
}

/// Changes queued after `after`, oldest first. A batch cut by `limit` ends
/// before its last (possibly incomplete) change.
pub async fn pending(client: &Client, node: &str, after: i64, limit: i64) -> Result<Vec<Change>, Error> {
    let rows = client
        .query(
            "SELECT id, tags, objects, tables, statement, search_path, txid, statement_at
             FROM prodhome.ddl_queue WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &limit],
        )
        .await
        .map_err(|e| sql(&format!("reading the DDL queue on {node}"), e))?;
    let full = rows.len() as i64 >= limit;
    let mut changes: Vec<Change> = Vec::new();
    let mut last_key: Option<(i64, SystemTime, String)> = None;
    for row in rows {
        let key = (
            row.get::<_, i64>(6),
            row.get::<_, SystemTime>(7),
            row.get::<_, String>(4),
        );
        let id: i64 = row.get(0);
        let (tags, objects, tables): (Vec<String>, Vec<String>, Vec<String>) =
            (row.get(1), row.get(2), row.get(3));
        match changes.last_mut() {
            Some(change) if last_key.as_ref() == Some(&key) => {
                change.last_id = id;
                change.tags.extend(tags);
                change.objects.extend(objects);
                for t in tables {
                    if !change.tables.contains(&t) {
                        change.tables.push(t);
                    }
                }
            }
            _ => changes.push(Change {
                first_id: id,
                last_id: id,
                tags,
                objects,
                tables,
                query: key.2.clone(),
                search_path: row.get(5),
            }),
        }
        last_key = Some(key);
    }
    if full && changes.len() > 1 {
        changes.pop();
    }
    Ok(changes)
}

/// The last change `node` applied from `publisher` (0 for none).
pub async fn applied(client: &Client, node: &str, publisher: &str) -> Result<i64, Error> {
    let row = client
        .query_opt(
            "SELECT last_id FROM prodhome.ddl_applied WHERE node = $1 AND publisher = $2",
            &[&node, &publisher],
        )
        .await
        .map_err(|e| sql(&format!("reading the applied DDL on {node}"), e))?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
}

/// The statements of a change a subscriber runs, each with whether it must
/// run outside a transaction block.
pub fn statements(change: &Change) -> Result<Vec<(String, bool)>, Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::Sql,
            format!("cannot follow `{}`: {why}", change.summary()),
        )
    };
    let split = sqlscript::split(&change.query).map_err(|e| refuse(format!("{e}")))?;
    let mut out = Vec::new();
    let mut other = Vec::new();
    for stmt in &split {
        if matches!(stmt.kind, Kind::Data | Kind::Transaction) {
            continue;
        }
        let lower = stmt.sql.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().take(8).collect();
        let first = words.first().copied().unwrap_or("");
        if matches!(
            first,
            "create"
                | "alter"
                | "drop"
                | "comment"
                | "grant"
                | "revoke"
                | "reindex"
                | "security"
                | "set"
                | "reset"
        ) {
            if first == "create" && words.contains(&"as") && words.contains(&"table") {
                return Err(refuse(
                    "CREATE TABLE … AS would copy rows on the subscriber as well as through replication; \
                     create the table with CREATE TABLE and fill it with INSERT … SELECT"
                        .into(),
                ));
            }
            let alone = words.contains(&"concurrently");
            out.push((stmt.sql.to_string(), alone));
        } else {
            other.push(first.to_string());
        }
    }
    if !out.iter().any(|(s, _)| {
        !s.to_ascii_lowercase().starts_with("set") && !s.to_ascii_lowercase().starts_with("reset")
    }) {
        let inside = other.first().map(String::as_str).unwrap_or("a function");
        return Err(refuse(format!(
            "the DDL ran inside {} (a DO block or function), which a subscriber cannot replay without its other effects; \
             apply the DDL on the subscribers by hand",
            inside.to_ascii_uppercase()
        )));
    }
    Ok(out)
}

/// Applies `change` on subscriber `node` and records it as applied from
/// `publisher`, in one transaction unless a statement must run alone.
pub async fn apply(client: &mut Client, node: &str, publisher: &str, change: &Change) -> Result<(), Error> {
    let stmts = statements(change)?;
    let what = |s: &str| format!("applying `{}` on {node}", short(s));
    let record = "INSERT INTO prodhome.ddl_applied (node, publisher, last_id) VALUES ($1, $2, $3)
                  ON CONFLICT (node, publisher) DO UPDATE SET last_id = excluded.last_id, at = now()";
    if stmts.iter().any(|(_, alone)| *alone) {
        client
            .execute(
                "SELECT set_config('search_path', $1, false)",
                &[&change.search_path],
            )
            .await
            .map_err(|e| sql(&what("SET search_path"), e))?;
        for (stmt, _) in &stmts {
            client
                .batch_execute(stmt)
                .await
                .map_err(|e| sql(&what(stmt), e))?;
        }
        client
            .batch_execute("RESET search_path")
            .await
            .map_err(|e| sql(&what("RESET search_path"), e))?;
        client
            .execute(record, &[&node, &publisher, &change.last_id])
            .await
            .map_err(|e| sql(&what("recording it"), e))?;
        return Ok(());
    }
    let tx = client.transaction().await.map_err(|e| sql(&what("BEGIN"), e))?;
    tx.execute(
        "SELECT set_config('search_path', $1, true)",
        &[&change.search_path],
    )
    .await
    .map_err(|e| sql(&what("SET search_path"), e))?;
    for (stmt, _) in &stmts {
        tx.batch_execute(stmt).await.map_err(|e| sql(&what(stmt), e))?;
    }
    tx.execute(record, &[&node, &publisher, &change.last_id])
        .await
        .map_err(|e| sql(&what("recording it"), e))?;
    tx.commit().await.map_err(|e| sql(&what("COMMIT"), e))
}

/// Records `change` as applied without running it (not for this node).
pub async fn skip(client: &Client, node: &str, publisher: &str, last_id: i64) -> Result<(), Error> {
    client
        .execute(
            "INSERT INTO prodhome.ddl_applied (node, publisher, last_id) VALUES ($1, $2, $3)
             ON CONFLICT (node, publisher) DO UPDATE SET last_id = excluded.last_id, at = now()",
            &[&node, &publisher, &last_id],
        )
        .await
        .map(drop)
        .map_err(|e| sql(&format!("recording skipped DDL on {node}"), e))
}

/// Whether relation `identity` (an index, say) exists on `client`'s node.
pub async fn relation_exists(client: &Client, identity: &str) -> Result<bool, Error> {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&identity])
        .await
        .map(|r| r.get(0))
        .map_err(|e| sql(&format!("looking up {identity}"), e))
}

/// Lets the replication role copy new `tables` (`schema.table`) for an
/// initial sync.
pub async fn grant_tables(publisher: &Client, node: &str, tables: &[String]) -> Result<(), Error> {
    let mut script = String::new();
    for table in tables {
        let schema = table.split('.').next().unwrap_or("public");
        script.push_str(&format!(
            "GRANT USAGE ON SCHEMA {} TO {REPLICATION_ROLE}; GRANT SELECT ON {} TO {REPLICATION_ROLE};",
            ident(schema),
            qualified(table)
        ));
    }
    if script.is_empty() {
        return Ok(());
    }
    publisher.batch_execute(&script).await.map_err(|e| {
        sql(
            &format!("granting the replication role SELECT on new tables on {node}"),
            e,
        )
    })
}

/// Makes subscription `name` pick up tables published since it was made.
/// A statement of its own: it cannot run in a transaction block.
pub async fn refresh(client: &Client, node: &str, subscription: &str) -> Result<(), Error> {
    client
        .batch_execute(&format!(
            "ALTER SUBSCRIPTION {} REFRESH PUBLICATION",
            ident(subscription)
        ))
        .await
        .map_err(|e| sql(&format!("refreshing subscription {subscription} on {node}"), e))
}

fn short(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(query: &str) -> Change {
        Change {
            first_id: 1,
            last_id: 1,
            tags: vec!["ALTER TABLE".into()],
            objects: vec![],
            tables: vec![],
            query: query.into(),
            search_path: "public".into(),
        }
    }

    #[test]
    fn a_multi_statement_string_replays_its_ddl_only() {
        let got = statements(&change(
            "insert into t values (1); ALTER TABLE t ADD c int; update t set c = 1",
        ))
        .unwrap();
        assert_eq!(got, vec![("ALTER TABLE t ADD c int".to_string(), false)]);
    }

    #[test]
    fn concurrently_runs_alone_and_do_blocks_are_refused() {
        let got = statements(&change("CREATE INDEX CONCURRENTLY i ON t (c)")).unwrap();
        assert_eq!(
            got,
            vec![("CREATE INDEX CONCURRENTLY i ON t (c)".to_string(), true)]
        );
        let err = statements(&change("DO $$ BEGIN EXECUTE 'alter table t add d int'; END $$")).unwrap_err();
        assert!(err.to_string().contains("inside DO"), "{err}");
        let err = statements(&change("create table n as select * from t")).unwrap_err();
        assert!(err.to_string().contains("CREATE TABLE … AS"), "{err}");
    }
}
