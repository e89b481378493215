//! The log reader the daemon runs: per node, one thread follows the log
//! directory and hands lines over a bounded channel to a second thread
//! that parses, classifies and tallies them and, once per interval, hands
//! the points to the store and the events to the event log. Nothing here
//! waits on the daemon: the store's `send` never waits, events go with
//! `try_send`, and a reader that gets ahead of its tallier drops lines
//! and counts them (`pg_log_dropped`) rather than queueing without bound.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use model::Event;
use model::PointSender;
use tokio::sync::mpsc;

use crate::follow::Follower;
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
    /// Files last written before this are history and are not read.
    pub since: SystemTime,
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
        let reader = Reader {
            follower: Follower::new(&node.dir, ".json", opts.since),
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
    tx: SyncSender<String>,
    dropped: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let (tx, dropped) = (&self.tx, &self.dropped);
            let read = self
                .follower
                .poll(1 << 20, |line| match tx.try_send(line.to_string()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => {}
                });
            match read {
                Ok(0) | Err(_) => std::thread::sleep(IDLE),
                Ok(_) => {}
            }
        }
    }
}

struct Tallier {
    tally: Tally,
    rx: Receiver<String>,
    dropped: Arc<AtomicI64>,
    interval: Duration,
    sink: PointSender,
    events: mpsc::Sender<Event>,
    /// Events the event log had no room for since the last flush.
    lost_events: i64,
}

impl Tallier {
    fn run(mut self) {
        let mut next = Instant::now() + self.interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(line) => self.line(&line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= next {
                let dropped = self.dropped.swap(0, Ordering::Relaxed);
                let lost = std::mem::take(&mut self.lost_events);
                self.sink.send(self.tally.flush(model::now_ns(), dropped, lost));
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
