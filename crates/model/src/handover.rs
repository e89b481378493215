//! The one way producers (the sampler, hum) hand points to whoever keeps
//! them (the store): a [`PointSender`] in front of a [`PointSink`].
//!
//! The queue behind it is bounded and never waits: the sampler must not
//! slow down when a disk stalls, nor hum's load when InfluxDB is down. A
//! batch that does not fit is dropped, and the drop is counted twice: by the
//! sink (the store reports it as a metric, measurement `store`, field
//! `dropped`) and in the [`Full`] the producer gets back, so a producer that
//! reports on itself (hum's `points_dropped`) can say so too.

use std::fmt;
use std::sync::Arc;

use crate::point::Point;

/// Where points are handed over. Implemented by the store.
///
/// When full: `try_send` does not wait. Every queue behind the sink is
/// bounded in points; a batch that does not fit in the room a queue has
/// left is dropped from that queue whole (never half of it), counted in
/// that queue's drop counter, and `try_send` answers [`Full`]. An empty
/// batch is always accepted.
pub trait PointSink: Send + Sync {
    /// Offers a batch; never waits (see the trait's docs for a full queue).
    fn try_send(&self, points: Vec<Point>) -> Result<(), Full>;
}

/// A batch, or part of its fan-out, did not fit and was dropped (and
/// counted by the sink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// The points dropped: the whole batch, by at least one of the queues.
    pub dropped: usize,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the point queue is full: {} points dropped", self.dropped)
    }
}

impl std::error::Error for Full {}

/// A producer's handle on a [`PointSink`]: cheap to clone, shared by every
/// task of a producer. Bounded and never blocking, as [`PointSink`] says.
#[derive(Clone)]
pub struct PointSender {
    sink: Arc<dyn PointSink>,
}

impl PointSender {
    pub fn new(sink: impl PointSink + 'static) -> PointSender {
        PointSender { sink: Arc::new(sink) }
    }

    /// Hands a batch over without waiting; [`Full`] when a queue had no
    /// room for it (dropped and counted, see [`PointSink`]).
    pub fn try_send(&self, points: Vec<Point>) -> Result<(), Full> {
        self.sink.try_send(points)
    }

    /// As [`PointSender::try_send`], for producers with nothing to add to
    /// the sink's own count of what was dropped.
    pub fn send(&self, points: Vec<Point>) {
        let _ = self.sink.try_send(points);
    }
}

impl fmt::Debug for PointSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PointSender")
    }
}
