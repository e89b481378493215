//! Keys built after the load, as `pgbench -i` does: when a fill starts on
//! an empty table, its primary key, UNIQUE constraints and other indexes
//! are dropped, the rows loaded, and each one built again by one sort —
//! far less work than maintaining it row by row. They come back exactly:
//! the same names and definitions (`pg_get_constraintdef`,
//! `pg_get_indexdef`).
//!
//! Safe to stop at any point: each drop is recorded in
//! `prodhome.data_fill_keys` in its own transaction, and each rebuild
//! deletes its record in the transaction that builds it, so an
//! interrupted fill (or [`restore`] after one) builds exactly what is
//! missing. The DDL is not replayed on subscribers
//! (`prodhome.ddl_follow = off`): they keep their keys throughout, and the
//! publisher's are the same again at the end.
//!
//! Built in this order: the primary key, UNIQUE constraints, then the
//! other indexes. Left in place: an index another constraint depends on (a child's
//! foreign key, an exclusion constraint), the replica identity index, a
//! clustered one, one with a comment, and every index of a partitioned
//! table.

use tokio_postgres::Client;

use crate::Error;

/// The table's indexes that may be dropped for the load: name, how to
/// build it again, how to drop it.
const DROPPABLE: &str = "SELECT ci.relname::text,
        CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
             ELSE format('ALTER TABLE %s ADD CONSTRAINT %I %s', i.indrelid::regclass, c.conname, pg_get_constraintdef(c.oid)) END,
        CASE WHEN c.oid IS NULL THEN format('DROP INDEX %s', i.indexrelid::regclass)
             ELSE format('ALTER TABLE %s DROP CONSTRAINT %I', i.indrelid::regclass, c.conname) END
   FROM pg_index i
   JOIN pg_class ci ON ci.oid = i.indexrelid
   JOIN pg_class t ON t.oid = i.indrelid
   LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
  WHERE i.indrelid = $1::text::regclass AND t.relkind = 'r'
    AND i.indisvalid AND NOT i.indisreplident AND NOT i.indisclustered
    AND NOT EXISTS (SELECT FROM pg_constraint o WHERE o.conindid = i.indexrelid AND o.contype NOT IN ('p', 'u'))
    AND NOT EXISTS (SELECT FROM pg_description d WHERE d.objoid IN (i.indexrelid, c.oid))
  ORDER BY c.contype = 'p' DESC NULLS LAST, 1";

/// The session's DDL stays on this node: subscribers keep their keys.
const LOCAL_DDL: &str = "BEGIN; SET LOCAL prodhome.ddl_follow = 'off'";

/// Drops the keys of `table` (`sql`: its quoted name) for the load when
/// `empty_fill` (a new fill of an empty table) and records them; returns
/// the keys to build after the load: those, or those an interrupted fill
/// had dropped.
pub(crate) async fn defer(
    client: &Client,
    table: &str,
    sql: &str,
    empty_fill: bool,
) -> Result<Vec<String>, Error> {
    let what = format!("dropping the keys of {table} for the load");
    let recorded = recorded(client, table).await?;
    if !recorded.is_empty() || !empty_fill {
        return Ok(recorded);
    }
    let empty: bool = client
        .query_one(&format!("SELECT NOT EXISTS (SELECT FROM {sql})"), &[])
        .await
        .map_err(|e| Error::sql(&what, e))?
        .get(0);
    if !empty {
        return Ok(Vec::new());
    }
    let keys = client
        .query(DROPPABLE, &[&sql])
        .await
        .map_err(|e| Error::sql(&what, e))?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    client
        .batch_execute(LOCAL_DDL)
        .await
        .map_err(|e| Error::sql(&what, e))?;
    let mut names = Vec::new();
    for (ord, k) in keys.iter().enumerate() {
        let (name, create, drop): (String, String, String) = (k.get(0), k.get(1), k.get(2));
        let record = client
            .execute(
                "INSERT INTO prodhome.data_fill_keys (tbl, name, ord, create_sql) VALUES ($1, $2, $3, $4)",
                &[&table, &name, &(ord as i32), &create],
            )
            .await;
        let dropped = match record {
            Ok(_) => client.batch_execute(&drop).await,
            Err(e) => Err(e),
        };
        if let Err(e) = dropped {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(Error::sql(&what, e));
        }
        names.push(name);
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| Error::sql(&what, e))?;
    Ok(names)
}

/// The keys of `table` dropped for a load and not yet built.
async fn recorded(client: &Client, table: &str) -> Result<Vec<String>, Error> {
    Ok(client
        .query(
            "SELECT name FROM prodhome.data_fill_keys WHERE tbl = $1 ORDER BY ord",
            &[&table],
        )
        .await
        .map_err(|e| Error::sql(format!("reading the keys of {table} dropped for the load"), e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Builds every key of `table` dropped for the load, each in its own
/// transaction with the deletion of its record; returns their names.
pub(crate) async fn rebuild(client: &Client, table: &str) -> Result<Vec<String>, Error> {
    let rows = client
        .query(
            "SELECT name, create_sql FROM prodhome.data_fill_keys WHERE tbl = $1 ORDER BY ord",
            &[&table],
        )
        .await
        .map_err(|e| Error::sql(format!("reading the keys of {table} to build"), e))?;
    let mut built = Vec::new();
    for r in rows {
        let (name, create): (String, String) = (r.get(0), r.get(1));
        let what = format!(
            "building {name} on {table} again after the load (it stays recorded in prodhome.data_fill_keys; `{create}` builds it by hand)"
        );
        let done = async {
            client.batch_execute(LOCAL_DDL).await?;
            client.batch_execute(&create).await?;
            client
                .execute(
                    "DELETE FROM prodhome.data_fill_keys WHERE tbl = $1 AND name = $2",
                    &[&table, &name],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = done {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(Error::sql(what, e));
        }
        built.push(name);
    }
    Ok(built)
}

/// After an interrupted or failed fill: builds every key any fill dropped
/// and has not built, so the tables have all their keys again. Returns
/// `table: key` for each.
pub async fn restore(client: &Client) -> Result<Vec<String>, Error> {
    let tables: Vec<String> = client
        .query("SELECT DISTINCT tbl FROM prodhome.data_fill_keys ORDER BY 1", &[])
        .await
        .map_err(|e| Error::sql("reading the keys dropped for a load", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        out.extend(
            rebuild(client, &t)
                .await?
                .into_iter()
                .map(|k| format!("{t}: {k}")),
        );
    }
    Ok(out)
}
