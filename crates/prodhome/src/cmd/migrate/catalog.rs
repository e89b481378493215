//! What a node's schema looks like, as a set of lines (columns with their
//! types, indexes, constraints), so "the subscriber has the change" is a
//! set comparison: what the migration added on the publisher is there, and
//! what it removed is gone.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// The user's schemas, not the system's.
const USER_NAMESPACES: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

pub(crate) async fn snapshot(client: &Client) -> Result<BTreeSet<String>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT format('column %I.%I.%I %s%s', n.nspname, c.relname, a.attname, \
                format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END) \
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {USER_NAMESPACES} \
         UNION ALL \
         SELECT format('index %s%s', pg_get_indexdef(i.indexrelid), CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END) \
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE {USER_NAMESPACES} \
         UNION ALL \
         SELECT format('constraint %I.%I %I %s', n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)) \
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE {USER_NAMESPACES}"
    );
    let rows = client.query(&sql, &[]).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// What a migration changed in the publisher's schema.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub(crate) added: BTreeSet<String>,
    pub(crate) removed: BTreeSet<String>,
}

impl Change {
    pub(crate) fn between(before: &BTreeSet<String>, after: &BTreeSet<String>) -> Change {
        Change {
            added: after.difference(before).cloned().collect(),
            removed: before.difference(after).cloned().collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    fn seen_in(&self, schema: &BTreeSet<String>) -> bool {
        self.added.is_subset(schema) && self.removed.is_disjoint(schema)
    }
}

/// How long after `since` the subscriber showed `change`, polling every
/// 100 ms until `limit`; `None` when it did not (or could not be read).
pub(crate) async fn wait_for(
    client: &Client,
    change: &Change,
    since: Instant,
    limit: Duration,
) -> Option<u64> {
    let deadline = since + limit;
    loop {
        if let Ok(schema) = snapshot(client).await
            && change.seen_in(&schema)
        {
            return Some(since.elapsed().as_millis() as u64);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Apply and sync failures the subscriber counted so far, over all its subscriptions.
pub(crate) async fn apply_errors(client: &Client) -> Option<i64> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(apply_error_count + sync_error_count), 0)::int8 FROM pg_stat_subscription_stats",
            &[],
        )
        .await
        .ok()?;
    Some(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_change_is_seen_when_added_lines_are_there_and_removed_ones_gone() {
        let before = set(&["column a", "index old"]);
        let after = set(&["column a", "index new"]);
        let change = Change::between(&before, &after);
        assert!(!change.is_empty());
        assert!(!change.seen_in(&set(&["column a", "index old", "column extra"])));
        assert!(!change.seen_in(&set(&["column a", "index old", "index new"])));
        assert!(change.seen_in(&set(&["column a", "index new", "column extra"])));
        assert!(Change::between(&before, &before).is_empty());
    }
}
