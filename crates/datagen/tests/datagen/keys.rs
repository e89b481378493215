//! Keys built after the load: an empty table's primary key, UNIQUE
//! constraints and indexes are dropped for the load and come back with the
//! same names and definitions; an index a child's foreign key needs stays;
//! a fill stopped mid-way leaves its committed batches, and
//! `keys::restore` builds what it had dropped.

use std::time::{Duration, Instant};

use datagen::FillOptions;
use datagen::copy::{BATCH, Progress};
use testkit::PgNode;
use tokio_postgres::Client;

use crate::{config, connect, request};

const SCHEMA: &str = "
CREATE TABLE kinds (id int PRIMARY KEY, label text NOT NULL UNIQUE);
CREATE TABLE events (
  id bigint PRIMARY KEY,
  kind_id int NOT NULL REFERENCES kinds,
  at timestamptz NOT NULL,
  ref uuid NOT NULL,
  note text,
  CONSTRAINT events_ref_unique UNIQUE (ref) DEFERRABLE INITIALLY DEFERRED);
CREATE INDEX events_at ON events (at DESC) WHERE note IS NOT NULL;
CREATE INDEX events_kind ON events USING hash (kind_id);";

/// Every index and constraint of the two tables, by name, as the server
/// prints its definition.
async fn definitions(client: &Client) -> Vec<String> {
    let sql = "SELECT c.relname || ': ' || pg_get_indexdef(i.indexrelid) FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN ('kinds'::regclass, 'events'::regclass)
               UNION ALL
               SELECT conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid IN ('kinds'::regclass, 'events'::regclass)
               ORDER BY 1";
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_tables_keys_are_built_after_the_load_exactly_as_they_were() {
    let node = PgNode::start();
    let config = config(&node, "postgres");
    let client = connect(&config).await;
    client.batch_execute(SCHEMA).await.unwrap();
    let before = definitions(&client).await;
    let tables = datagen::catalog::read(&client).await.unwrap();
    let plan = datagen::plan(&tables, &request(50_000)).unwrap();
    datagen::ledger::ensure(&client).await.unwrap();
    let report = datagen::fill(&config, &plan, FillOptions::new(5), Progress::new(&plan))
        .await
        .unwrap();
    let built: Vec<(&str, Vec<String>)> = report
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.keys_built_after_load.clone()))
        .collect();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        built,
        vec![
            // kinds_pkey stays: events' foreign key needs it.
            ("public.kinds", names(&["kinds_label_key"])),
            (
                "public.events",
                names(&["events_pkey", "events_ref_unique", "events_at", "events_kind"])
            ),
        ]
    );
    assert_eq!(definitions(&client).await, before, "the keys came back different");
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 50_000);
    assert_eq!(
        count(&client, "SELECT count(*) FROM prodhome.data_fill_keys").await,
        0
    );
    // A table with rows keeps its keys during the load.
    let plan = datagen::plan(&tables, &request(100)).unwrap();
    let report = datagen::fill(&config, &plan, FillOptions::new(6), Progress::new(&plan))
        .await
        .unwrap();
    assert!(
        report.tables.iter().all(|t| t.keys_built_after_load.is_empty()),
        "{report:?}"
    );
    assert_eq!(definitions(&client).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_stopped_mid_way_keeps_its_batches_and_gets_its_keys_back() {
    let node = PgNode::start();
    let config = config(&node, "postgres");
    let client = connect(&config).await;
    client.batch_execute(SCHEMA).await.unwrap();
    let before = definitions(&client).await;
    let tables = datagen::catalog::read(&client).await.unwrap();
    let mut request = request(12 * BATCH);
    request.tables = vec!["events".into()];
    client
        .batch_execute("INSERT INTO kinds SELECT g, 'k' || g FROM generate_series(1, 10) g")
        .await
        .unwrap();
    let plan = datagen::plan(&tables, &request).unwrap();
    datagen::ledger::ensure(&client).await.unwrap();
    let mut opts = FillOptions::new(9);
    opts.streams = 1;
    let watcher = connect(&config).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let first_batch = async {
        while count(&watcher, "SELECT count(*) FROM events").await == 0 {
            assert!(Instant::now() < deadline, "no batch committed in 2 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Dropping the fill's future is what an interrupt does.
    tokio::select! {
        r = datagen::fill(&config, &plan, opts, Progress::new(&plan)) => panic!("the fill ended before it was stopped: {r:?}"),
        _ = first_batch => {}
    }
    let restored = datagen::keys::restore(&client).await.unwrap();
    assert_eq!(
        restored,
        ["events_pkey", "events_ref_unique", "events_at", "events_kind"]
            .map(|k| format!("public.events: {k}"))
    );
    assert_eq!(definitions(&client).await, before, "the keys came back different");
    let kept = count(&client, "SELECT count(*) FROM events").await;
    assert!(
        kept > 0 && (kept as u64).is_multiple_of(BATCH),
        "{kept} rows: not whole batches"
    );
    // The same fill again writes only what is missing.
    let report = datagen::fill(&config, &plan, opts, Progress::new(&plan))
        .await
        .unwrap();
    assert_eq!(report.tables[0].resumed_from, kept as u64);
    assert_eq!(report.rows_added, 12 * BATCH - kept as u64);
    assert_eq!(
        count(&client, "SELECT count(*) FROM events").await,
        (12 * BATCH) as i64
    );
    assert_eq!(definitions(&client).await, before);
}
