//! What the server tests share: a server logging as prodhome's nodes do,
//! a store to read back, and the SQL that makes a deadlock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::Event;
use store::{EmbeddedOptions, StoreOptions, query};
use testkit::{PgNode, poll};
use tokio_postgres::Client;

/// The settings prodhome's conf.rs writes, with shorter thresholds.
pub(crate) const SETTINGS: &[&str] = &[
    "logging_collector=on",
    "log_destination=jsonlog",
    "log_directory=log",
    "log_filename=postgresql-%Y%m%d-%H%M%S.log",
    "log_lock_waits=on",
    "log_checkpoints=on",
    "deadlock_timeout=200ms",
    "log_min_duration_statement=200ms",
    "lc_messages=C",
];

pub(crate) async fn connect(node: &PgNode) -> Client {
    testkit::locks::connect(&node.url()).await
}

/// Sum of `field` per tag set of `measurement` on node `n1`.
pub(crate) fn sums(db: &Path, measurement: &str, field: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in query::series(db, measurement, Some("n1"), 0, Duration::ZERO).unwrap_or_default() {
        if s.field == field {
            let key: Vec<String> = s
                .tags
                .iter()
                .filter(|(k, _)| *k != "node")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            *out.entry(key.join(",")).or_default() += s.points.iter().map(|p| p.1).sum::<f64>();
        }
    }
    out
}

pub(crate) fn total(db: &Path, measurement: &str, field: &str) -> f64 {
    sums(db, measurement, field).values().sum()
}

/// Lines in every jsonlog file of `dir`.
pub(crate) fn lines_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().count())
                .sum()
        })
        .unwrap_or(0)
}

pub(crate) use testkit::locks::until_waiting;

pub(crate) async fn deadlock(node: &PgNode, observer: &Client) {
    testkit::locks::deadlock(&node.url(), observer).await;
}

pub(crate) fn start_store(db: &Path) -> store::Store {
    store::start(StoreOptions {
        embedded: Some(EmbeddedOptions {
            path: db.to_path_buf(),
            retention: Duration::from_secs(3600),
        }),
        influx: None,
        prometheus: true,
    })
    .unwrap()
}

/// A server, a store at `db` and pglog reading the one into the other.
pub(crate) struct Rig {
    pub(crate) node: PgNode,
    pub(crate) log_dir: PathBuf,
    pub(crate) db: PathBuf,
    pub(crate) store: store::Store,
    pub(crate) events: tokio::sync::mpsc::Receiver<Event>,
    reader: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Rig {
    pub(crate) fn start() -> Rig {
        let node = PgNode::start_with(SETTINGS);
        let log_dir = node.data_dir().join("log");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("metrics.db");
        let store = start_store(&db);
        let (events_tx, events) = tokio::sync::mpsc::channel::<Event>(1000);
        let mut opts = pglog::Options::new([("n1".to_string(), log_dir.clone())], Duration::from_millis(200));
        opts.since = std::time::SystemTime::UNIX_EPOCH;
        let reader = tokio::spawn(pglog::run(opts, store.points(), events_tx));
        Rig {
            node,
            log_dir,
            db,
            store,
            events,
            reader,
            _dir: dir,
        }
    }

    /// Waits until the store has counted every line of the log files.
    pub(crate) async fn caught_up(&self) {
        let (db, dir) = (self.db.clone(), self.log_dir.clone());
        tokio::task::spawn_blocking(move || {
            poll(
                "the store to count every line of the log",
                Duration::from_secs(60),
                || {
                    let (files, counted) = (lines_in(&dir), total(&db, "pg_log", "count") as usize);
                    (files > 0 && files == counted).then_some(())
                },
            )
        })
        .await
        .unwrap();
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
