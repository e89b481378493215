//! datagen against a real Postgres 15 server: the catalog as the server has
//! it, fills that resume where their last committed batch left off, binary
//! and text COPY giving the same rows (`formats`), and keys built after the
//! load of an empty table exactly as they were (`keys`).

mod formats;
mod keys;

use std::collections::BTreeMap;

use datagen::copy::Progress;
use datagen::generator::Gen;
use datagen::{FillOptions, Request, Rows};
use testkit::PgNode;
use tokio_postgres::{Client, Config, NoTls};

pub(crate) fn config(node: &PgNode, db: &str) -> Config {
    let mut c = Config::new();
    c.host("127.0.0.1").port(node.port()).user("postgres").dbname(db);
    c
}

pub(crate) async fn connect(config: &Config) -> Client {
    let (client, conn) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

pub(crate) fn request(rows: u64) -> Request {
    Request {
        tables: Vec::new(),
        rows: Rows::Count(rows),
        overrides: BTreeMap::new(),
    }
}

async fn fill(config: &Config, client: &Client, rows: u64) -> datagen::FillReport {
    let tables = datagen::catalog::read(client).await.unwrap();
    let plan = datagen::plan(&tables, &request(rows)).unwrap();
    datagen::ledger::ensure(client).await.unwrap();
    let progress = Progress::new(&plan);
    datagen::fill(config, &plan, FillOptions::new(3), progress)
        .await
        .unwrap()
}

async fn md5(client: &Client) -> String {
    client
        .query_one(
            "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM items t",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

const ITEMS: &str = "CREATE TABLE items (
    id int PRIMARY KEY,
    label varchar(6) NOT NULL,
    qty int NOT NULL CHECK (qty BETWEEN 1 AND 5))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_fill_resumes_at_its_last_batch_and_ends_with_the_same_rows() {
    let node = PgNode::start();
    node.sql("CREATE DATABASE whole");
    node.sql("CREATE DATABASE cut");
    let rows = 2 * datagen::copy::BATCH + 5000;
    let (whole, cut) = (config(&node, "whole"), config(&node, "cut"));
    let (a, b) = (connect(&whole).await, connect(&cut).await);
    a.batch_execute(ITEMS).await.unwrap();
    b.batch_execute(ITEMS).await.unwrap();
    let first = fill(&whole, &a, rows).await;
    assert_eq!(first.rows_added, rows);
    fill(&cut, &b, rows).await;
    // As if the run had stopped after its first committed batch.
    b.batch_execute(&format!(
        "DELETE FROM items WHERE id > {0}; UPDATE prodhome.data_fills SET done = 0;
         DELETE FROM prodhome.data_fill_batches WHERE batch > 0",
        datagen::copy::BATCH
    ))
    .await
    .unwrap();
    let resumed = fill(&cut, &b, rows).await;
    assert_eq!(resumed.tables[0].resumed_from, datagen::copy::BATCH);
    assert_eq!(resumed.rows_added, rows - datagen::copy::BATCH);
    assert_eq!(
        md5(&a).await,
        md5(&b).await,
        "resumed rows differ from an uninterrupted fill"
    );
    let again = fill(&cut, &b, rows).await;
    assert!(again.tables[0].already_filled && again.rows_added == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_whose_streams_committed_out_of_order_writes_only_the_missing_batches() {
    let node = PgNode::start();
    node.sql("CREATE DATABASE whole");
    node.sql("CREATE DATABASE cut");
    let batch = datagen::copy::BATCH;
    let rows = 3 * batch + 5000;
    let (whole, cut) = (config(&node, "whole"), config(&node, "cut"));
    let (a, b) = (connect(&whole).await, connect(&cut).await);
    a.batch_execute(ITEMS).await.unwrap();
    b.batch_execute(ITEMS).await.unwrap();
    fill(&whole, &a, rows).await;
    fill(&cut, &b, rows).await;
    // As if the streams had committed batches 0, 2 and 3 and the run had
    // stopped before batch 1 committed.
    b.batch_execute(&format!(
        "DELETE FROM items WHERE id > {batch} AND id <= {}; UPDATE prodhome.data_fills SET done = 0;
         DELETE FROM prodhome.data_fill_batches WHERE batch = 1",
        2 * batch
    ))
    .await
    .unwrap();
    let resumed = fill(&cut, &b, rows).await;
    assert_eq!(resumed.tables[0].resumed_from, rows - batch);
    assert_eq!(resumed.rows_added, batch);
    assert_eq!(
        md5(&a).await,
        md5(&b).await,
        "the rewritten batch differs from an uninterrupted fill"
    );
    let again = fill(&cut, &b, rows).await;
    assert!(again.tables[0].already_filled && again.rows_added == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_self_references_and_nullable_cycles_are_read_and_planned() {
    let node = PgNode::start();
    let client = connect(&config(&node, "postgres")).await;
    client
        .batch_execute(
            "CREATE DOMAIN positive AS int CHECK (VALUE > 0);
             CREATE TABLE teams (id int PRIMARY KEY, size positive NOT NULL, lead_id int);
             CREATE TABLE people (id int PRIMARY KEY, team_id int NOT NULL REFERENCES teams,
                                  boss_id int REFERENCES people);
             ALTER TABLE teams ADD CONSTRAINT team_lead FOREIGN KEY (lead_id) REFERENCES people;",
        )
        .await
        .unwrap();
    let tables = datagen::catalog::read(&client).await.unwrap();
    let plan = datagen::plan(&tables, &request(50)).unwrap();
    let column_gen = |t: &str, c: &str| {
        let table = plan.tables.iter().find(|x| x.name == t).unwrap();
        table
            .columns
            .iter()
            .find(|x| x.name == c)
            .unwrap()
            .generator
            .clone()
    };
    assert!(
        matches!(column_gen("public.teams", "size"), Gen::Int { lo: 1, .. }),
        "{:?}",
        column_gen("public.teams", "size")
    );
    assert_eq!(
        column_gen("public.teams", "lead_id"),
        Gen::Null,
        "the nullable FK breaks the cycle"
    );
    assert_eq!(
        column_gen("public.people", "boss_id"),
        Gen::Null,
        "a self-reference starts NULL"
    );
    assert_eq!(plan.tables[0].name, "public.teams", "parents first");
    let config = config(&node, "postgres");
    datagen::ledger::ensure(&client).await.unwrap();
    let report = datagen::fill(&config, &plan, FillOptions::new(1), Progress::new(&plan))
        .await
        .unwrap();
    assert_eq!(report.rows_added, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_numbers_its_keys_past_the_rows_a_table_already_has() {
    let node = PgNode::start();
    let config = config(&node, "postgres");
    let client = connect(&config).await;
    client
        .batch_execute(&format!(
            "{ITEMS}; INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2), (700, 'c', 3)"
        ))
        .await
        .unwrap();
    let report = fill(&config, &client, 1000).await;
    assert_eq!(report.rows_added, 1000);
    // A second fill with other arguments numbers after the first.
    let report = fill(&config, &client, 10).await;
    assert_eq!(report.rows_added, 10);
    let count: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1013);
}
