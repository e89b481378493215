//! Counters into per-second rates, correct across counter resets and node
//! restarts. Pure: no I/O, no clock.
//!
//! A rate needs two readings of the same counter in the same *epoch* (the
//! same server run and the same stats reset). When the epoch changed, or
//! the counter went down (a reset the epoch did not show), or time did not
//! move forward, the interval's rate is unknown: no rate is given and the
//! reading becomes the new baseline. So a restart shows as one missing
//! sample, never as a negative rate or a spike of everything counted since.

use std::collections::HashMap;
use std::hash::Hash;

/// One reading of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub value: i64,
    /// When it was read, in ns.
    pub at_ns: i64,
    /// Identifies the counter's lifetime: any change means it restarted
    /// from zero (for Postgres: the postmaster's start time and the
    /// `stats_reset` time together).
    pub epoch: u64,
}

/// The rate per second between two readings, or `None` when it cannot be
/// known (see the module docs).
pub fn rate(prev: &Reading, cur: &Reading) -> Option<f64> {
    if cur.epoch != prev.epoch || cur.value < prev.value || cur.at_ns <= prev.at_ns {
        return None;
    }
    let seconds = (cur.at_ns - prev.at_ns) as f64 / 1e9;
    Some((cur.value - prev.value) as f64 / seconds)
}

/// The previous reading of many counters, keyed by `K`.
#[derive(Debug)]
pub struct Rates<K> {
    prev: HashMap<K, Reading>,
}

impl<K> Default for Rates<K> {
    fn default() -> Self {
        Rates { prev: HashMap::new() }
    }
}

impl<K: Hash + Eq> Rates<K> {
    /// Records `cur` for `key` and returns the rate since the previous
    /// reading, if it can be known.
    pub fn update(&mut self, key: K, cur: Reading) -> Option<f64> {
        let rate = self.prev.get(&key).and_then(|prev| rate(prev, &cur));
        self.prev.insert(key, cur);
        rate
    }

    /// Forgets counters not in `keep` (a dropped database, a gone slot).
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.prev.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(value: i64, at_s: i64, epoch: u64) -> Reading {
        Reading {
            value,
            at_ns: at_s * 1_000_000_000,
            epoch,
        }
    }

    #[test]
    fn rates_across_resets_restarts_and_clock_hiccups() {
        // (previous, current, expected rate)
        let table = [
            (r(100, 10, 1), r(300, 12, 1), Some(100.0)), // steady
            (r(100, 10, 1), r(100, 11, 1), Some(0.0)),   // idle
            (r(100, 10, 1), r(40, 11, 1), None),         // reset, epoch unchanged
            (r(100, 10, 1), r(900, 11, 2), None),        // restart: counted up past the old value
            (r(100, 10, 1), r(5, 11, 2), None),          // restart: counter small again
            (r(100, 10, 1), r(200, 10, 1), None),        // no time passed
            (r(100, 10, 1), r(200, 9, 1), None),         // clock went back
        ];
        for (prev, cur, expected) in table {
            assert_eq!(rate(&prev, &cur), expected, "{prev:?} -> {cur:?}");
        }
    }

    #[test]
    fn after_a_restart_the_new_reading_is_the_baseline() {
        let mut rates = Rates::default();
        assert_eq!(rates.update("commits", r(1_000_000, 1, 1)), None); // first reading
        assert_eq!(rates.update("commits", r(1_000_100, 2, 1)), Some(100.0));
        assert_eq!(rates.update("commits", r(7, 3, 2)), None); // restarted
        assert_eq!(rates.update("commits", r(57, 4, 2)), Some(50.0));
        rates.retain(|k| *k != "commits");
        assert_eq!(rates.update("commits", r(60, 5, 2)), None);
    }
}
