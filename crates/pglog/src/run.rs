//! The log reader the daemon runs: per node, one thread follows the log
//! directory and hands lines over a bounded channel to a second thread
//! that parses, classifies and tallies them and, once per interval, hands
//! the points to the store and the events to the event log. Nothing here
//! waits on the daemon: the store's `send` never waits, events go with
//! `try_send`, and a reader that gets ahead of its tallier drops lines
//! and counts them (`pg_log_dropped`) rather than queueing without bound.
//!
//! With [`Options::checkpoints`] set, each node's [`Checkpoint`] is saved
//! there after every interval's points are handed over (and, with
//! [`Options::written`], written): the checkpoint of the last line counted
//! in them, never of a line only read. A reader stopped at any moment
//! (a daemon's shutdown, or kill -9) and started again re-reads what it had
//! not yet counted, and nothing it had.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use model::Event;
use model::PointSender;
use tokio::sync::mpsc;

use crate::checkpoints;
use crate::follow::{Checkpoint, Follower};
use crate::record::Record;
use crate::tally::Tally;

/// Lines waiting between a node's reader and its tallier.
const QUEUE: usize = 16 * 1024;
/// How often a reader looks for new lines when there were none.
const IDLE: Duration = Duration::from_millis(100);

/// One node's log.
#[derive(Debug, Clone)]
pub struct NodeLog {
    pub node: String,
    /// The collector's directory (the jsonlog files are `*.json` in it).
    pub dir: PathBuf,
}

/// What to read and how often to report.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: Vec<NodeLog>,
    /// How often each node's points are handed over (the sampler's interval).
    pub interval: Duration,
    /// Files last written before this are history and are not read
    /// (unless a checkpoint says where to go on).
    pub since: SystemTime,
    /// Where each node's checkpoint is kept (`DIR/NODE.json`); `None`:
    /// every run starts afresh from `since`.
    pub checkpoints: Option<PathBuf>,
    /// Called before a checkpoint is saved: returns once the points handed
    /// over so far are written (bounded), so a checkpoint never runs ahead
    /// of the store.
    pub written: Option<Written>,
}

/// See [`Options::written`]. Called from the reader's own threads, never
/// from an async task: it may block.
#[derive(Clone)]
pub struct Written(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Written")
    }
}

/// What a node's reader hands its tallier: a line, or where the reader is
/// after the lines before it.
enum Msg {
    Line(String),
    Mark(Checkpoint),
}

impl Options {
    /// Options for `(node, log directory)` pairs, reading the files
    /// written from now on (a file still being written is read whole).
    pub fn new(nodes: impl IntoIterator<Item = (String, PathBuf)>, interval: Duration) -> Options {
        Options {
            nodes: nodes
                .into_iter()
                .map(|(node, dir)| NodeLog { node, dir })
                .collect(),
            interval,
            since: SystemTime::now(),
            checkpoints: None,
            written: None,
        }
    }
}

/// Sets the flag when dropped: the threads stop when the task running
/// [`run`] is aborted or dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Follows every node's log until this future is dropped (the daemon
/// aborts its task on shutdown).
pub async fn run(opts: Options, sink: PointSender, events: mpsc::Sender<Event>) {
    let stop = Arc::new(AtomicBool::new(false));
    let _guard = StopOnDrop(stop.clone());
    for node in opts.nodes {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicI64::new(0));
        let resumed = opts
            .checkpoints
            .as_deref()
            .and_then(|dir| checkpoints::load(dir, &node.node));
        let follower = match resumed {
            Some(at) => Follower::resume(&node.dir, ".json", at),
            None => Follower::new(&node.dir, ".json", opts.since),
        };
        let reader = Reader {
            follower,
            tx,
            dropped: dropped.clone(),
            stop: stop.clone(),
        };
        let tallier = Tallier {
            tally: Tally::new(&node.node),
            rx,
            dropped,
            interval: opts.interval,
            sink: sink.clone(),
            events: events.clone(),
            lost_events: 0,
            stop: stop.clone(),
            keep: opts.checkpoints.clone().map(|dir| Keep {
                dir,
                written: opts.written.clone(),
                stop: stop.clone(),
                counted: None,
                saved: None,
            }),
        };
        std::thread::Builder::new()
            .name(format!("pglog-read-{}", node.node))
            .spawn(move || reader.run())
            .ok();
        std::thread::Builder::new()
            .name(format!("pglog-tally-{}", node.node))
            .spawn(move || tallier.run())
            .ok();
    }
    std::future::pending::<()>().await;
}

struct Reader {
    follower: Follower,
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let (tx, dropped) = (&self.tx, &self.dropped);
            let read = self
                .follower
                .poll(1 << 20, |line| match tx.try_send(Msg::Line(line.to_string())) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => {}
                });
            match read {
                Ok(0) | Err(_) => std::thread::sleep(IDLE),
                Ok(_) => {
                    // A mark that finds the queue full is left out: the
                    // next one says as much.
                    if let Some(at) = self.follower.checkpoint() {
                        let _ = self.tx.try_send(Msg::Mark(at));
                    }
                }
            }
        }
    }
}

struct Tallier {
    tally: Tally,
    rx: Receiver<Msg>,
    dropped: Arc<AtomicI64>,
    interval: Duration,
    sink: PointSender,
    events: mpsc::Sender<Event>,
    /// Events the event log had no room for since the last flush.
    lost_events: i64,
    stop: Arc<AtomicBool>,
    keep: Option<Keep>,
}

/// Saving a node's checkpoint after each interval's points.
struct Keep {
    dir: PathBuf,
    written: Option<Written>,
    stop: Arc<AtomicBool>,
    /// Where the reader was after the last line tallied.
    counted: Option<Checkpoint>,
    saved: Option<Checkpoint>,
}

impl Keep {
    /// Saves the checkpoint of what was just handed over, once it is
    /// written. While stopping, without waiting for the store (it may be
    /// closing; the daemon flushes it last thing).
    fn save(&mut self, node: &str) {
        if self.counted == self.saved {
            return;
        }
        let Some(at) = self.counted.clone() else { return };
        if let Some(written) = &self.written
            && !self.stop.load(Ordering::Relaxed)
        {
            (written.0)();
        }
        match checkpoints::save(&self.dir, node, &at) {
            Ok(()) => self.saved = Some(at),
            Err(e) => warn_once(node, &self.dir, &e),
        }
    }
}

/// A checkpoint that cannot be saved costs a re-read after a restart, not
/// a line: said once (the daemon's log), not per interval.
fn warn_once(node: &str, dir: &std::path::Path, e: &std::io::Error) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!("cannot save {node}'s log checkpoint in {}: {e}", dir.display());
    }
}

impl Tallier {
    fn run(mut self) {
        let mut next = Instant::now() + self.interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Line(line)) => self.line(&line),
                Ok(Msg::Mark(at)) => {
                    if let Some(keep) = &mut self.keep {
                        keep.counted = Some(at);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Stopped: what was tallied since the last flush is not
                // handed over, and its lines are after the checkpoint.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Stopped: nothing more is handed over (the lines tallied
            // since the last checkpoint are read again next time).
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if Instant::now() >= next {
                let dropped = self.dropped.swap(0, Ordering::Relaxed);
                let lost = std::mem::take(&mut self.lost_events);
                self.sink.send(self.tally.flush(model::now_ns(), dropped, lost));
                if let Some(keep) = &mut self.keep {
                    keep.save(self.tally.node());
                }
                next += self.interval;
                if next < Instant::now() {
                    next = Instant::now() + self.interval;
                }
            }
        }
    }

    fn line(&mut self, line: &str) {
        // A line that is not JSON (a partial write, a foreign file) is
        // counted as unparsable rather than guessed at.
        let record = Record::parse(line).unwrap_or_else(|_| Record {
            error_severity: "UNPARSED".into(),
            ..Record::default()
        });
        if let Some(event) = self.tally.add(&record, Instant::now())
            && self.events.try_send(event).is_err()
        {
            self.lost_events += 1;
        }
    }
}
