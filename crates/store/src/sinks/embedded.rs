//! The embedded sink: one SQLite file in the lab's state directory.
//!
//! ```text
//! tagsets (id, measurement, node, tags JSON)          one row per measurement + tag set
//! fields  (tagset, idx, name, kind)                   each tag set's fields, by index
//! chunks  (tagset, first_ts, last_ts, points, sealed, data)
//!                                                     points of one tag set, encoded (see codec)
//! events  (ts, unit, kind, json)                      model::Event as JSON
//! ```
//!
//! Each write (what the sink drained from its queue, in one transaction)
//! adds one chunk per tag set it touched; once a minute the chunks older
//! than a minute are merged, sorted and sealed into chunks of at most
//! [`MAX_SPAN`]. So a live lab writes one small row per point, and an hour
//! of one series is ~60 rows to read rather than 3,600; a value costs ~11
//! bytes. Values keep the type they were written with; a point written
//! twice (same tag set and timestamp) keeps the later one. WAL mode lets
//! `prodhome metrics` and the dashboard read while the daemon writes.
//! Retention deletes whole chunks past the age, once a minute.
//!
//! The writer (`writer.rs`) owns the connection and the encoding of points
//! into chunks; its tag-set cache is `tagsets.rs`; this file is the sink's
//! thread around it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::TrySendError;
use std::time::Duration;

use model::{Event, Point};

use crate::lane::{Inbox, Item, Msg};

mod tagsets;
mod writer;

pub use writer::Writer;

/// Where the embedded store lives and how long it keeps data.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The SQLite file (`<state dir>/metrics.db` in a lab).
    pub path: PathBuf,
    /// Samples and events older than this are deleted.
    pub retention: Duration,
}

pub(crate) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS tagsets (
        id INTEGER PRIMARY KEY,
        measurement TEXT NOT NULL,
        node TEXT NOT NULL,
        tags TEXT NOT NULL,
        UNIQUE (measurement, tags));
    CREATE INDEX IF NOT EXISTS tagsets_by_measurement ON tagsets (measurement, node);
    CREATE TABLE IF NOT EXISTS fields (
        tagset INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        PRIMARY KEY (tagset, idx)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS chunks (
        tagset INTEGER NOT NULL,
        first_ts INTEGER NOT NULL,
        last_ts INTEGER NOT NULL,
        points INTEGER NOT NULL,
        sealed INTEGER NOT NULL,
        data BLOB NOT NULL);
    CREATE INDEX IF NOT EXISTS chunks_by_tagset ON chunks (tagset, first_ts);
    CREATE INDEX IF NOT EXISTS chunks_open ON chunks (last_ts) WHERE sealed = 0;
    CREATE TABLE IF NOT EXISTS events (
        ts INTEGER NOT NULL,
        unit TEXT NOT NULL,
        kind TEXT NOT NULL,
        json TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts);";

/// The widest time a chunk covers: a reader looking for data from `t` on
/// starts at chunks that begin at `t - MAX_SPAN`.
pub(crate) const MAX_SPAN: i64 = 15 * 60 * 1_000_000_000;

/// How long a writer or reader waits for the other's lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most points written in one transaction: bounds how long a reader can
/// be kept waiting for a fresh snapshot.
const MAX_TXN_POINTS: usize = 50_000;

/// Written transactions' points waiting to be freed by the reaper thread.
const REAP_QUEUE: usize = 4;

/// The sink's thread: drains the queue, writes what it got in one
/// transaction, answers flushes once what came before them is written.
pub(crate) fn run(mut writer: Writer, mut inbox: Inbox) {
    // Freeing a written batch (every point's strings and maps) took a
    // quarter of the writer's time: a second thread does it, so the writer
    // moves on to the next transaction. Bounded; when it is full, or could
    // not be started, the writer frees inline.
    let (reap, reaped) = std::sync::mpsc::sync_channel::<Vec<Arc<[Point]>>>(REAP_QUEUE);
    let reaper = std::thread::Builder::new()
        .name("store-free".into())
        .spawn(move || reaped.into_iter().for_each(drop))
        .ok();
    while let Some(first) = inbox.rx.blocking_recv() {
        let mut items = vec![first];
        let mut points = items[0].points();
        while points < MAX_TXN_POINTS
            && let Ok(item) = inbox.rx.try_recv()
        {
            points += item.points();
            items.push(item);
        }
        let written = write_items(&mut writer, &inbox, items);
        if let Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) = reap.try_send(written) {
            drop(b);
        }
        if writer.maintenance_due()
            && let Err(e) = writer.maintain()
        {
            // Retention and merging are retried at the next maintenance;
            // the points are all written, so the sink is not failing.
            inbox.counters.retrying(e.to_string());
        }
    }
    drop(reap);
    if let Some(reaper) = reaper {
        let _ = reaper.join();
    }
}

/// Writes `items` and answers their flushes; gives back the written
/// batches for the caller to free.
fn write_items(writer: &mut Writer, inbox: &Inbox, items: Vec<Item>) -> Vec<Arc<[Point]>> {
    let mut batches: Vec<Arc<[Point]>> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    for item in &items {
        match &item.msg {
            Msg::Points(p) => batches.push(p.clone()),
            Msg::Event(e) => events.push(Event::clone(e)),
            Msg::Flush(_) => {}
        }
    }
    let n = batches.iter().map(|b| b.len()).sum::<usize>() + events.len();
    match writer.write(batches.iter().flat_map(|b| b.iter()), &events) {
        Ok(()) => inbox.counters.wrote(n),
        Err(e) => inbox.counters.failed(n, e.to_string()),
    }
    // Room in the queue is given back only now, after the write.
    for item in items {
        if let Msg::Flush(done) = item.msg {
            let _ = done.send(());
        }
    }
    batches
}
