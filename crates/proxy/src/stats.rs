//! Per-link counters: atomics the pumps bump without locking, and the plain
//! snapshot [`LinkStats`] a caller reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of one link's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections accepted and forwarded (not counting refused ones).
    pub connections_total: u64,
    /// Connections open right now.
    pub connections_active: u64,
    /// Connections reset at accept because the link was partitioned.
    pub connections_refused: u64,
    /// Connections dropped by a reset, a partition or shutdown.
    pub connections_killed: u64,
    /// Connections closed because the upstream could not be reached.
    pub upstream_failures: u64,
    /// Bytes written to the upstream server.
    pub bytes_to_upstream: u64,
    /// Bytes written back to clients.
    pub bytes_to_client: u64,
    /// Faults applied (every `apply`, resets included).
    pub faults_applied: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_active: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) connections_killed: AtomicU64,
    pub(crate) upstream_failures: AtomicU64,
    pub(crate) bytes_to_upstream: AtomicU64,
    pub(crate) bytes_to_client: AtomicU64,
    pub(crate) faults_applied: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LinkStats {
        LinkStats {
            connections_total: self.connections_total.load(Relaxed),
            connections_active: self.connections_active.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            connections_killed: self.connections_killed.load(Relaxed),
            upstream_failures: self.upstream_failures.load(Relaxed),
            bytes_to_upstream: self.bytes_to_upstream.load(Relaxed),
            bytes_to_client: self.bytes_to_client.load(Relaxed),
            faults_applied: self.faults_applied.load(Relaxed),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

/// Counts one connection as active for as long as it lives, whichever way
/// its task ends, and as killed when it ends without being settled: a task
/// aborted by a reset, a partition or shutdown never reaches its own end.
pub(crate) struct Active {
    counters: Arc<Counters>,
    settled: bool,
}

impl Active {
    pub(crate) fn new(counters: Arc<Counters>) -> Active {
        counters.connections_total.fetch_add(1, Relaxed);
        counters.connections_active.fetch_add(1, Relaxed);
        Active {
            counters,
            settled: false,
        }
    }

    /// The connection ended by itself (closed, or failed and counted so):
    /// not a kill.
    pub(crate) fn settle(&mut self) {
        self.settled = true;
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.counters.connections_active.fetch_sub(1, Relaxed);
        if !self.settled {
            Counters::bump(&self.counters.connections_killed);
        }
    }
}
