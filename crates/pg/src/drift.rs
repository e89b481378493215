//! Schema drift: a replicated table's columns (name, type, NOT NULL),
//! primary key and indexes on each subscriber, compared with the
//! publisher's. Drift is what breaks an apply worker later (a missing
//! column) or makes a subscriber answer differently (a missing index, a
//! looser constraint), so `verify` reports it per table and node.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{Error, sql};

/// One table on one subscriber whose schema differs from the publisher's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub table: String,
    /// The subscriber.
    pub node: String,
    /// Each difference in a sentence.
    pub differences: Vec<String>,
}

/// A table's schema as compared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Shape {
    /// Column name → "type[ NOT NULL]".
    columns: BTreeMap<String, String>,
    primary_key: Vec<String>,
    indexes: Vec<String>,
}

const SHAPE: &str = "
SELECT
  (SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}') FROM pg_attribute a
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT coalesce(array_agg(format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
      ORDER BY a.attnum), '{}') FROM pg_attribute a
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT coalesce(array_agg(a.attname::text ORDER BY k.n), '{}') FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = c.oid AND i.indisprimary),
  (SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid) ORDER BY pg_get_indexdef(i.indexrelid)), '{}')
    FROM pg_index i WHERE i.indrelid = c.oid)
FROM pg_class c WHERE c.oid = to_regclass($1)";

async fn shape(client: &Client, node: &str, table: &str) -> Result<Option<Shape>, Error> {
    let quoted = crate::replication::qualified(table);
    let row = client
        .query_opt(SHAPE, &[&quoted])
        .await
        .map_err(|e| sql(&format!("reading the schema of {table} on {node}"), e))?;
    Ok(row.map(|row| {
        let (names, types): (Vec<String>, Vec<String>) = (row.get(0), row.get(1));
        Shape {
            columns: names.into_iter().zip(types).collect(),
            primary_key: row.get(2),
            indexes: row.get(3),
        }
    }))
}

/// The drift of `table` on every subscriber.
pub(crate) async fn table_drift(
    table: &str,
    publisher: (&str, &Client),
    subscribers: &[(&str, &Client)],
) -> Result<Vec<Drift>, Error> {
    let Some(want) = shape(publisher.1, publisher.0, table).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (node, client) in subscribers {
        let differences = match shape(client, node, table).await? {
            None => vec![format!("the table is missing on {node}")],
            Some(have) => differences(&want, &have, publisher.0, node),
        };
        if !differences.is_empty() {
            out.push(Drift {
                table: table.into(),
                node: node.to_string(),
                differences,
            });
        }
    }
    Ok(out)
}

fn differences(want: &Shape, have: &Shape, publisher: &str, node: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (name, ty) in &want.columns {
        match have.columns.get(name) {
            None => out.push(format!(
                "column {name} ({ty}) is on {publisher} but not on {node}"
            )),
            Some(other) if other != ty => out.push(format!(
                "column {name} is {ty} on {publisher} but {other} on {node}"
            )),
            Some(_) => {}
        }
    }
    for (name, ty) in &have.columns {
        if !want.columns.contains_key(name) {
            out.push(format!(
                "column {name} ({ty}) is on {node} but not on {publisher}"
            ));
        }
    }
    if want.primary_key != have.primary_key {
        let key = |k: &[String]| match k.is_empty() {
            true => "none".to_string(),
            false => format!("({})", k.join(", ")),
        };
        out.push(format!(
            "primary key {} on {publisher} but {} on {node}",
            key(&want.primary_key),
            key(&have.primary_key)
        ));
    }
    for index in want.indexes.iter().filter(|i| !have.indexes.contains(i)) {
        out.push(format!("index missing on {node}: {index}"));
    }
    for index in have.indexes.iter().filter(|i| !want.indexes.contains(i)) {
        out.push(format!("index only on {node}: {index}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_column_and_a_missing_index_are_named() {
        let want = Shape {
            columns: [("id".to_string(), "bigint NOT NULL".to_string())].into(),
            primary_key: vec!["id".into()],
            indexes: vec!["CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)".into()],
        };
        let mut have = want.clone();
        have.columns.insert("note".into(), "text".into());
        have.indexes.clear();
        let got = differences(&want, &have, "main", "copy");
        assert_eq!(
            got,
            vec![
                "column note (text) is on copy but not on main".to_string(),
                "index missing on copy: CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)".to_string(),
            ]
        );
        assert!(differences(&want, &want, "main", "copy").is_empty());
    }
}
