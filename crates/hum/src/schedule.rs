//! The open-loop timeline and every seeded random choice about *when* and
//! *what kind* of transaction: pure functions of the seed, so two runs with
//! the same seed play the same schedule, whatever the server does.
//!
//! Each client has its own streams of a ChaCha8 generator seeded with the
//! run's seed: stream `2·client` for its schedule (arrival times, long
//! transactions, disconnects), `2·client + 1` for its workload's keys and
//! values, and the last stream for the rate spikes all clients share.
//! Arrivals are a Poisson process (exponential gaps, as pgbench `--rate`)
//! at `rate / clients` per client, times the spike factor while a spike lasts.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::options::{Rate, Stochastic};

/// One scheduled transaction of one client.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// 0, 1, 2, … per client.
    pub index: u64,
    /// When it is due, from the start of the run; `None` in closed loop
    /// (as soon as the previous one ends).
    pub at: Option<Duration>,
    /// A long, lock-holding transaction instead of the workload's.
    pub long: Option<LongTx>,
    /// Drop the connection after this transaction.
    pub disconnect_after: bool,
}

/// A long transaction: which hot row (a raw draw the workload maps onto
/// its hot rows) and how long it holds the lock.
#[derive(Debug, Clone, PartialEq)]
pub struct LongTx {
    pub hold: Duration,
    pub hot: u64,
}

/// A rate spike: from `start` for `length`, the rate times `factor`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub start: Duration,
    pub length: Duration,
    pub factor: f64,
}

/// Mean time between spikes (end of one to start of the next), seconds.
const SPIKE_GAP_MEAN_S: f64 = 20.0;

/// The spikes of a run with `seed`, in time order, without end.
pub fn spikes(seed: u64) -> Spikes {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX);
    Spikes { rng, after: 0.0 }
}

/// Iterator over [`Spike`]s; see [`spikes`].
pub struct Spikes {
    rng: ChaCha8Rng,
    after: f64,
}

impl Iterator for Spikes {
    type Item = Spike;

    fn next(&mut self) -> Option<Spike> {
        let start = self.after + exponential(&mut self.rng) * SPIKE_GAP_MEAN_S;
        let length = self.rng.random_range(2.0..8.0);
        let factor = self.rng.random_range(2.0..5.0);
        self.after = start + length;
        Some(Spike {
            start: Duration::from_secs_f64(start),
            length: Duration::from_secs_f64(length),
            factor,
        })
    }
}

/// The schedule of client `client` (0-based) of `clients`: an endless
/// iterator of [`Slot`]s, a pure function of its arguments.
pub fn client_schedule(
    seed: u64,
    client: u32,
    clients: u32,
    rate: Rate,
    stochastic: &Stochastic,
) -> ClientSchedule {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2 * u64::from(client));
    let per_client = match rate {
        Rate::Max => None,
        Rate::PerSecond(r) => Some(r / f64::from(clients.max(1))),
    };
    let spikes = (stochastic.spikes && per_client.is_some()).then(|| {
        let mut all = spikes(seed);
        let first = all.next().expect("spikes never end");
        (all, first)
    });
    ClientSchedule {
        rng,
        per_client,
        spikes,
        t: 0.0,
        index: 0,
        long_share: stochastic.long_tx_share,
        disconnect_share: stochastic.disconnect_share,
    }
}

/// The generator for client `client`'s workload choices (keys, values).
pub(crate) fn workload_rng(seed: u64, client: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2 * u64::from(client) + 1);
    rng
}

/// Iterator over one client's [`Slot`]s; see [`client_schedule`].
pub struct ClientSchedule {
    rng: ChaCha8Rng,
    per_client: Option<f64>,
    /// The remaining spikes and the current (or next) one.
    spikes: Option<(Spikes, Spike)>,
    /// Seconds since the start of the last arrival.
    t: f64,
    index: u64,
    long_share: f64,
    disconnect_share: f64,
}

impl ClientSchedule {
    /// The next arrival of a Poisson process whose rate is piecewise
    /// constant: spend an Exp(1) "budget" of rate × time across segments.
    fn next_arrival(&mut self, rate: f64) -> f64 {
        let mut budget = exponential(&mut self.rng);
        loop {
            let (factor, until) = self.segment();
            let r = rate * factor;
            if self.t + budget / r <= until {
                self.t += budget / r;
                return self.t;
            }
            budget -= (until - self.t) * r;
            self.t = until;
        }
    }

    /// The spike factor at `self.t` and until when it holds.
    fn segment(&mut self) -> (f64, f64) {
        let Some((rest, spike)) = &mut self.spikes else {
            return (1.0, f64::INFINITY);
        };
        loop {
            let start = spike.start.as_secs_f64();
            let end = start + spike.length.as_secs_f64();
            if self.t < start {
                return (1.0, start);
            }
            if self.t < end {
                return (spike.factor, end);
            }
            *spike = rest.next().expect("spikes never end");
        }
    }
}

impl Iterator for ClientSchedule {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let at = self
            .per_client
            .map(|rate| Duration::from_secs_f64(self.next_arrival(rate)));
        let long = (self.long_share > 0.0 && self.rng.random::<f64>() < self.long_share).then(|| LongTx {
            hold: Duration::from_secs_f64(self.rng.random_range(0.5..3.0)),
            hot: self.rng.random(),
        });
        let disconnect_after =
            self.disconnect_share > 0.0 && self.rng.random::<f64>() < self.disconnect_share;
        let index = self.index;
        self.index += 1;
        Some(Slot {
            index,
            at,
            long,
            disconnect_after,
        })
    }
}

/// An Exp(1) draw.
fn exponential(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - U is in (0, 1], so the logarithm is finite.
    -(1.0 - rng.random::<f64>()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(seed: u64, client: u32, rate: Rate, s: &Stochastic, n: usize) -> Vec<Slot> {
        client_schedule(seed, client, 4, rate, s).take(n).collect()
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let s = Stochastic {
            spikes: true,
            long_tx_share: 0.1,
            disconnect_share: 0.05,
        };
        let rate = Rate::PerSecond(100.0);
        assert_eq!(take(7, 1, rate, &s, 500), take(7, 1, rate, &s, 500));
        assert_ne!(take(7, 1, rate, &s, 500), take(8, 1, rate, &s, 500));
        assert_ne!(take(7, 1, rate, &s, 500), take(7, 2, rate, &s, 500));
    }

    #[test]
    fn arrivals_average_the_rate_per_client() {
        let slots = take(1, 0, Rate::PerSecond(400.0), &Stochastic::default(), 20_000);
        let last = slots.last().unwrap().at.unwrap().as_secs_f64();
        // 20,000 arrivals at 100/s per client take ~200 s.
        assert!((190.0..210.0).contains(&last), "{last}");
        assert!(slots.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(slots.iter().all(|s| s.long.is_none() && !s.disconnect_after));
    }

    #[test]
    fn spikes_raise_the_rate_while_they_last() {
        let s = Stochastic {
            spikes: true,
            ..Stochastic::default()
        };
        let slots = take(3, 0, Rate::PerSecond(400.0), &s, 40_000);
        let horizon = slots.last().unwrap().at.unwrap();
        let plan: Vec<Spike> = spikes(3).take_while(|sp| sp.start < horizon).collect();
        assert!(plan.len() >= 2, "{plan:?}");
        let inside = |t: Duration| plan.iter().any(|sp| t >= sp.start && t < sp.start + sp.length);
        let spiked: Duration = plan.iter().map(|sp| sp.length).sum();
        let (n_in, n_out) = slots.iter().fold((0, 0), |(i, o), s| {
            if inside(s.at.unwrap()) {
                (i + 1, o)
            } else {
                (i, o + 1)
            }
        });
        let rate_in = n_in as f64 / spiked.as_secs_f64();
        let rate_out = n_out as f64 / (horizon - spiked).as_secs_f64();
        assert!(rate_in > 1.8 * rate_out, "in {rate_in}/s, out {rate_out}/s");
    }

    #[test]
    fn shares_pick_about_that_share() {
        let s = Stochastic {
            spikes: false,
            long_tx_share: 0.1,
            disconnect_share: 0.02,
        };
        let slots = take(5, 0, Rate::Max, &s, 10_000);
        let long = slots.iter().filter(|s| s.long.is_some()).count();
        let disc = slots.iter().filter(|s| s.disconnect_after).count();
        assert!((800..1200).contains(&long), "{long}");
        assert!((120..280).contains(&disc), "{disc}");
        assert!(slots.iter().all(|s| s.at.is_none()));
        let hold = slots.iter().find_map(|s| s.long.as_ref()).unwrap().hold;
        assert!(hold >= Duration::from_millis(500) && hold < Duration::from_secs(3));
    }
}
