//! Binary COPY writes the same rows as text COPY: the same seed filled
//! into two databases, one each way, gives the same checksums — so every
//! binary encoder (integers of each width, numerics, floats, dates,
//! timestamps, uuids, json, jsonb, bytea, enums, chars, foreign keys
//! copied as the parent's bytes) says what the text one says.

use datagen::copy::Progress;
use datagen::{CopyFormat, FillOptions};
use testkit::PgNode;
use tokio_postgres::Client;

use crate::{config, connect, request};

const SCHEMA: &str = "
CREATE TYPE level AS ENUM ('low', 'mid', 'high', 'it''s \"odd\"');
CREATE TABLE stations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code char(5) NOT NULL UNIQUE,
  opened date NOT NULL,
  height smallint NOT NULL CHECK (height BETWEEN -400 AND 8848));
CREATE TABLE readings (
  station_id bigint NOT NULL REFERENCES stations,
  seq int NOT NULL,
  taken timestamp NOT NULL,
  logged timestamptz NOT NULL,
  value numeric(12,3) NOT NULL CHECK (value >= -1000 AND value <= 1000),
  serial_no numeric(10,2) NOT NULL UNIQUE,
  ratio double precision CHECK (ratio >= 0 AND ratio < 1),
  ok boolean NOT NULL,
  tag uuid NOT NULL UNIQUE,
  lvl level NOT NULL,
  meta jsonb NOT NULL,
  raw json,
  blob bytea,
  note varchar(10),
  PRIMARY KEY (seq));
CREATE TABLE labels (id int PRIMARY KEY, words text[] NOT NULL);";

const TABLES: [(&str, &str); 3] = [("stations", "id"), ("readings", "seq"), ("labels", "id")];

async fn sums(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for (t, key) in TABLES {
        let sql = format!(
            "SELECT count(*)::text || ' ' || md5(string_agg(t::text, '|' ORDER BY {key})) FROM {t} t"
        );
        out.push(client.query_one(&sql, &[]).await.unwrap().get(0));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_text_copy_write_the_same_rows() {
    let node = PgNode::start();
    node.sql("CREATE DATABASE bin");
    node.sql("CREATE DATABASE txt");
    let mut results = Vec::new();
    for (db, format) in [("bin", CopyFormat::Auto), ("txt", CopyFormat::Text)] {
        let config = config(&node, db);
        let client = connect(&config).await;
        client.batch_execute(SCHEMA).await.unwrap();
        let tables = datagen::catalog::read(&client).await.unwrap();
        let plan = datagen::plan(&tables, &request(30_000)).unwrap();
        datagen::ledger::ensure(&client).await.unwrap();
        let mut opts = FillOptions::new(11);
        opts.format = format;
        let report = datagen::fill(&config, &plan, opts, Progress::new(&plan))
            .await
            .unwrap();
        let formats: Vec<(&str, &str)> = report
            .tables
            .iter()
            .map(|t| (t.table.as_str(), t.format))
            .collect();
        let expected = match format {
            // An array has no binary encoder here: that table goes text.
            CopyFormat::Auto => [
                ("public.labels", "text"),
                ("public.stations", "binary"),
                ("public.readings", "binary"),
            ],
            CopyFormat::Text => [
                ("public.labels", "text"),
                ("public.stations", "text"),
                ("public.readings", "text"),
            ],
        };
        assert_eq!(formats, expected, "{db}");
        results.push(sums(&client).await);
    }
    assert!(results[0][1].starts_with("30000 "), "{:?}", results[0]);
    assert_eq!(
        results[0], results[1],
        "binary COPY wrote other rows than text COPY"
    );
}
