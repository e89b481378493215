//! The faults a link can carry, the set of them a link holds at one moment,
//! and the seeded jitter of a latency fault (a pure function).

use std::fmt;
use std::time::Duration;

/// One fault to apply to a [`Link`](crate::Link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every chunk of data is held for `delay ± jitter` before it is
    /// forwarded, in each direction separately: a request/response round trip
    /// gains about `2 × delay`. Order within a connection is kept.
    Latency { delay: Duration, jitter: Duration },
    /// A token bucket per connection and direction (not shared across the
    /// link's connections), starting empty. 0 forwards nothing.
    Bandwidth { bytes_per_sec: u64 },
    /// Connections are accepted and kept but nothing is forwarded either way
    /// until healed; what was sent meanwhile is then delivered. New
    /// connections are accepted but not connected upstream until healed.
    Stall,
    /// One shot: every current connection is dropped now (RST to both ends);
    /// new connections are forwarded as usual.
    Reset,
    /// Until healed, new connections are accepted and reset at once, and
    /// every existing one is dropped (RST to both ends).
    Partition,
}

/// Which kind of [`Fault`], for clearing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    Latency,
    Bandwidth,
    Stall,
    Reset,
    Partition,
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::Bandwidth { .. } => FaultKind::Bandwidth,
            Fault::Stall => FaultKind::Stall,
            Fault::Reset => FaultKind::Reset,
            Fault::Partition => FaultKind::Partition,
        }
    }
}

impl FaultKind {
    /// Every kind, in the order [`Link::faults`](crate::Link::faults) lists them.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::Stall,
        FaultKind::Reset,
        FaultKind::Partition,
    ];

    /// The name used in lab files, on the command line and in events.
    pub fn as_str(&self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Stall => "stall",
            FaultKind::Reset => "reset",
            FaultKind::Partition => "partition",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Latency { delay, jitter } if jitter.is_zero() => write!(f, "latency {delay:?}"),
            Fault::Latency { delay, jitter } => write!(f, "latency {delay:?} ± {jitter:?}"),
            Fault::Bandwidth { bytes_per_sec } => write!(f, "bandwidth {bytes_per_sec} B/s"),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

/// What a link is doing right now; published on a `watch` channel so every
/// pump sees a change at once. Reset is an epoch, not a flag: a connection
/// dies when the epoch it was born in has passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) latency: Option<(Duration, Duration)>,
    pub(crate) bandwidth: Option<u64>,
    pub(crate) stall: bool,
    pub(crate) partition: bool,
    pub(crate) reset_epoch: u64,
    pub(crate) shutdown: bool,
}

impl State {
    pub(crate) fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Latency { delay, jitter } => self.latency = Some((delay, jitter)),
            Fault::Bandwidth { bytes_per_sec } => self.bandwidth = Some(bytes_per_sec),
            Fault::Stall => self.stall = true,
            Fault::Reset => self.reset_epoch += 1,
            Fault::Partition => self.partition = true,
        }
    }

    pub(crate) fn clear(&mut self, kind: FaultKind) {
        match kind {
            FaultKind::Latency => self.latency = None,
            FaultKind::Bandwidth => self.bandwidth = None,
            FaultKind::Stall => self.stall = false,
            // A reset has already happened; there is nothing left to undo.
            FaultKind::Reset => {}
            FaultKind::Partition => self.partition = false,
        }
    }

    pub(crate) fn heal(&mut self) {
        for kind in FaultKind::ALL {
            self.clear(kind);
        }
    }

    /// The faults in force (a reset is over as soon as it is applied).
    pub(crate) fn faults(&self) -> Vec<Fault> {
        let mut out = Vec::new();
        if let Some((delay, jitter)) = self.latency {
            out.push(Fault::Latency { delay, jitter });
        }
        if let Some(bytes_per_sec) = self.bandwidth {
            out.push(Fault::Bandwidth { bytes_per_sec });
        }
        if self.stall {
            out.push(Fault::Stall);
        }
        if self.partition {
            out.push(Fault::Partition);
        }
        out
    }

    /// No fault touches the data: the pump may forward straight through.
    pub(crate) fn is_clean(&self) -> bool {
        self.latency.is_none() && self.bandwidth.is_none() && !self.stall && !self.partition
    }

    /// Whether a connection born in `epoch` must die now.
    pub(crate) fn kills(&self, epoch: u64) -> bool {
        self.partition || self.shutdown || self.reset_epoch != epoch
    }
}

/// Which way data flows through a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the upstream server.
    ToUpstream,
    /// From the upstream server back to the client.
    ToClient,
}

/// The delay for chunk number `chunk` of connection number `conn` in
/// direction `dir` of a link seeded with `seed`: `delay` plus an offset drawn
/// uniformly from `-jitter..=jitter` (never below zero). A pure function, so
/// the same seed gives the same delays run after run.
pub fn jittered_delay(
    delay: Duration,
    jitter: Duration,
    seed: u64,
    conn: u64,
    dir: Direction,
    chunk: u64,
) -> Duration {
    let span = jitter.as_nanos().min(u64::MAX as u128 / 2) as u64;
    if span == 0 {
        return delay;
    }
    let dir = match dir {
        Direction::ToUpstream => 1,
        Direction::ToClient => 2,
    };
    let h = splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ conn) ^ dir) ^ chunk);
    let offset = h % (2 * span + 1);
    if offset >= span {
        delay.saturating_add(Duration::from_nanos(offset - span))
    } else {
        delay.saturating_sub(Duration::from_nanos(span - offset))
    }
}

/// A well-mixed 64-bit hash step (Steele, Lea, Flood: SplitMix64).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delays(seed: u64) -> Vec<Duration> {
        (0..200)
            .map(|chunk| jittered_delay(50 * MS, 10 * MS, seed, 3, Direction::ToClient, chunk))
            .collect()
    }

    #[test]
    fn jitter_is_the_same_under_the_same_seed() {
        assert_eq!(delays(42), delays(42));
    }

    #[test]
    fn jitter_differs_between_seeds_and_chunks() {
        assert_ne!(delays(42), delays(43));
        let d = delays(42);
        assert!(d.iter().any(|x| *x != d[0]), "every chunk got the same delay");
    }

    #[test]
    fn jitter_stays_within_delay_plus_or_minus_jitter_and_spreads() {
        let d = delays(7);
        assert!(d.iter().all(|x| *x >= 40 * MS && *x <= 60 * MS), "{d:?}");
        assert!(
            d.iter().any(|x| *x < 45 * MS) && d.iter().any(|x| *x > 55 * MS),
            "{d:?}"
        );
    }

    #[test]
    fn jitter_larger_than_delay_never_goes_below_zero() {
        let d: Vec<_> = (0..100)
            .map(|c| jittered_delay(MS, 10 * MS, 1, 0, Direction::ToUpstream, c))
            .collect();
        assert!(d.contains(&Duration::ZERO), "{d:?}");
        assert!(d.iter().all(|x| *x <= 11 * MS), "{d:?}");
    }

    #[test]
    fn no_jitter_is_exactly_the_delay() {
        let d = jittered_delay(5 * MS, Duration::ZERO, 9, 1, Direction::ToUpstream, 4);
        assert_eq!(d, 5 * MS);
    }

    #[test]
    fn state_lists_active_faults_and_heal_clears_them_but_keeps_the_reset_epoch() {
        let mut s = State::default();
        s.apply(Fault::Latency {
            delay: MS,
            jitter: MS,
        });
        s.apply(Fault::Bandwidth { bytes_per_sec: 10 });
        s.apply(Fault::Reset);
        s.apply(Fault::Stall);
        assert_eq!(
            s.faults(),
            vec![
                Fault::Latency {
                    delay: MS,
                    jitter: MS
                },
                Fault::Bandwidth { bytes_per_sec: 10 },
                Fault::Stall
            ]
        );
        assert!(s.kills(0) && !s.kills(1));
        s.heal();
        assert!(s.faults().is_empty() && s.is_clean());
        assert!(s.kills(0), "a connection from before the reset stays dead");
    }
}
