//! One sink's bounded queue. Producers never wait: a batch that does not fit
//! in the room left is dropped and counted. Room is counted in points (an
//! event counts as one), so `buffer = 10_000` means what it says whatever
//! the batch sizes are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use model::{Event, Point};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

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
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn wrote(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Points the sink gave up on (a write that failed for good).
    pub(crate) fn failed(&self, n: usize, error: String) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
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
    pub(crate) fn new(name: &'static str, capacity: usize, events: bool) -> (Lane, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
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
    /// and counts the loss. Never waits.
    pub(crate) fn offer(&self, msg: Msg, cost: usize) {
        let permit = u32::try_from(cost)
            .ok()
            .and_then(|n| self.room.clone().try_acquire_many_owned(n).ok());
        match permit {
            Some(room) => {
                if self
                    .tx
                    .send(Item {
                        msg,
                        _room: Some(room),
                    })
                    .is_err()
                {
                    // The sink task is gone (it panicked or the runtime is
                    // shutting down): what it would have written is lost.
                    self.counters.dropped.fetch_add(cost as u64, Ordering::Relaxed);
                }
            }
            None => {
                self.counters.dropped.fetch_add(cost as u64, Ordering::Relaxed);
            }
        }
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
        let (lane, mut inbox) = Lane::new("test", 10, true);
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
}
