//! One sink's bounded queue. Producers never wait: a batch that does not fit
//! in the room left is dropped and counted. Room is counted in points (an
//! event counts as one), so `buffer = 10_000` means what it says whatever
//! the batch sizes are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use model::{Event, Point};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

/// What a sink task receives.
pub(crate) enum Msg {
    Points(Arc<[Point]>),
    Event(Arc<Event>),
    /// Write everything received before this, then answer.
    Flush(oneshot::Sender<()>),
}

/// A message with the room it holds in its queue; the room is given back
/// when the sink drops it.
pub(crate) struct Item {
    pub(crate) msg: Msg,
    _room: Option<OwnedSemaphorePermit>,
}

impl Item {
    /// The points this item holds (0 for events and flushes).
    pub(crate) fn points(&self) -> usize {
        match &self.msg {
            Msg::Points(p) => p.len(),
            _ => 0,
        }
    }
}

/// Counters a sink keeps about itself, read by `Store::stats`.
pub(crate) struct Counters {
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) health: Mutex<Health>,
    /// Bumped on every change of any sink's state (see `Store::sink_changes`).
    changed: Arc<watch::Sender<u64>>,
}

/// Whether the sink writes, and what went wrong last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    /// The latest write error, if any (kept after a recovery, for the record).
    pub(crate) last_error: Option<String>,
    /// The latest batch was given up on; cleared by the next one written.
    pub(crate) failing: bool,
    /// How many times the sink started failing, and recovered, since start:
    /// a reader that looks now and then still sees every change.
    pub(crate) failures: u64,
    pub(crate) recoveries: u64,
}

impl Counters {
    pub(crate) fn new(changed: Arc<watch::Sender<u64>>) -> Counters {
        Counters {
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            health: Mutex::new(Health::default()),
            changed,
        }
    }

    pub(crate) fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Points written; a failing sink is ok again.
    pub(crate) fn wrote(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if health.failing {
            health.failing = false;
            health.recoveries += 1;
            drop(health);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Points the sink gave up on (a write that failed for good): the sink
    /// is failing until it writes again.
    pub(crate) fn failed(&self, n: usize, error: String) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.last_error = Some(error);
        if !health.failing {
            health.failing = true;
            health.failures += 1;
            drop(health);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// A write that failed and will be tried again: not failing (yet).
    pub(crate) fn retrying(&self, error: String) {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(error);
    }
}

/// The producer side of one sink's queue.
pub(crate) struct Lane {
    pub(crate) name: &'static str,
    tx: mpsc::UnboundedSender<Item>,
    room: Arc<Semaphore>,
    capacity: usize,
    pub(crate) counters: Arc<Counters>,
    /// Whether this sink wants events (the Prometheus sink does not).
    pub(crate) events: bool,
}

/// The consumer side, handed to the sink's task.
pub(crate) struct Inbox {
    pub(crate) rx: mpsc::UnboundedReceiver<Item>,
    pub(crate) counters: Arc<Counters>,
}

impl Lane {
    pub(crate) fn new(
        name: &'static str,
        capacity: usize,
        events: bool,
        changed: Arc<watch::Sender<u64>>,
    ) -> (Lane, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::new(changed));
        let capacity = capacity.clamp(1, u32::MAX as usize);
        let lane = Lane {
            name,
            tx,
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
            counters: counters.clone(),
            events,
        };
        (lane, Inbox { rx, counters })
    }

    /// Queues `msg` if `cost` points of room are free; otherwise drops it
    /// and counts the loss. Never waits. True when queued.
    pub(crate) fn offer(&self, msg: Msg, cost: usize) -> bool {
        let permit = u32::try_from(cost)
            .ok()
            .and_then(|n| self.room.clone().try_acquire_many_owned(n).ok());
        let queued = permit.is_some_and(|room| {
            // Fails only when the sink task is gone (it panicked or the
            // runtime is shutting down): what it would have written is lost.
            self.tx
                .send(Item {
                    msg,
                    _room: Some(room),
                })
                .is_ok()
        });
        if !queued {
            self.counters.dropped.fetch_add(cost as u64, Ordering::Relaxed);
        }
        queued
    }

    /// Asks the sink to write what it holds; resolves when it did (or at
    /// once when the sink is gone).
    pub(crate) fn flush(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Item {
            msg: Msg::Flush(tx),
            _room: None,
        });
        rx
    }

    /// Points waiting in the queue now.
    pub(crate) fn queued(&self) -> usize {
        self.capacity - self.room.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Msg {
        Msg::Points((0..n).map(|i| Point::new("m", i as i64)).collect())
    }

    #[test]
    fn a_full_lane_drops_and_counts_instead_of_waiting() {
        let (lane, mut inbox) = Lane::new("test", 10, true, Arc::new(watch::channel(0).0));
        lane.offer(batch(6), 6);
        lane.offer(batch(6), 6); // does not fit: 4 left
        lane.offer(batch(4), 4);
        assert_eq!(lane.counters.dropped.load(Ordering::Relaxed), 6);
        assert_eq!(lane.queued(), 10);
        let first = inbox.rx.try_recv().unwrap();
        assert_eq!(first.points(), 6);
        drop(first); // the sink is done with it: room comes back
        assert_eq!(lane.queued(), 4);
        lane.offer(batch(6), 6);
        assert_eq!(lane.counters.dropped.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn failing_and_recovering_each_count_once_and_say_so() {
        let (tx, rx) = watch::channel(0);
        let (lane, _inbox) = Lane::new("test", 10, true, Arc::new(tx));
        let c = &lane.counters;
        c.retrying("timed out".into());
        assert!(!c.health().failing, "a retry is not a failure yet");
        c.failed(3, "404 database not found".into());
        c.failed(3, "404 database not found".into());
        let h = c.health();
        assert_eq!((h.failing, h.failures, h.recoveries), (true, 1, 0));
        assert_eq!(*rx.borrow(), 1);
        c.wrote(2);
        c.wrote(2);
        let h = c.health();
        assert_eq!((h.failing, h.failures, h.recoveries), (false, 1, 1));
        assert_eq!(h.last_error.as_deref(), Some("404 database not found"));
        assert_eq!(*rx.borrow(), 2);
    }
}
