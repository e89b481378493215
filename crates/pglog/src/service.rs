//! App services' output, counted by level: the supervisor hands every line
//! a service prints to a tap ([`ServiceTaps::tap`]), the tap hands it to a
//! bounded queue without waiting (full: the line is dropped and counted,
//! the service's output path never waits on counting), and one thread reads
//! each line's level ([`LevelRule`]) and, once per interval, hands the store
//! per-interval deltas, as the node log reader does:
//!
//! | measurement | tags | fields |
//! |---|---|---|
//! | `service_log_lines` | `service`, `level` (`trace` … `fatal`, `unknown`) | `count` (levels seen in the interval, and 0 for ten minutes after) |
//! | `service_log_dropped` | `service` | `count`: lines not counted because the queue was full |

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use model::{Point, PointSender};

use crate::level::{Level, LevelRule};
use crate::tally::keep_zeros;

/// Lines waiting between the services' taps and the counter.
const QUEUE: usize = 16 * 1024;

/// What the supervisor calls with each line a unit prints: the shape of
/// `supervisor::LineTap`, so the daemon can hand it over as it is.
pub type LineTap = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// One service to count, and how its lines tell their level.
#[derive(Debug, Clone)]
pub struct ServiceLog {
    pub service: String,
    pub rule: LevelRule,
}

/// The taps of the services being counted.
pub struct ServiceTaps {
    taps: Vec<(String, LineTap)>,
}

impl ServiceTaps {
    /// The tap for `service`'s output, if it is counted.
    pub fn tap(&self, service: &str) -> Option<LineTap> {
        self.taps
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, tap)| tap.clone())
    }
}

/// Starts counting: one thread for every service, handing points to `sink`
/// every `interval`. It ends, after a last flush, once every tap is dropped
/// (the daemon's units are gone).
pub fn count_services(services: Vec<ServiceLog>, interval: Duration, sink: PointSender) -> ServiceTaps {
    if services.is_empty() {
        return ServiceTaps { taps: Vec::new() };
    }
    let (tx, rx) = sync_channel::<(usize, Vec<u8>)>(QUEUE);
    let mut taps = Vec::new();
    let mut counted = Vec::new();
    for (i, s) in services.into_iter().enumerate() {
        let dropped = Arc::new(AtomicI64::new(0));
        let (tx, lost) = (tx.clone(), dropped.clone());
        let tap: LineTap = Arc::new(move |line: &[u8]| {
            if let Err(TrySendError::Full(_)) = tx.try_send((i, line.to_vec())) {
                lost.fetch_add(1, Ordering::Relaxed);
            }
        });
        taps.push((s.service.clone(), tap));
        counted.push(Counted {
            service: s.service,
            rule: s.rule,
            dropped,
            levels: BTreeMap::new(),
            recent: HashMap::new(),
        });
    }
    let counter = Counter {
        services: counted,
        rx,
        interval,
        sink,
    };
    let spawned = std::thread::Builder::new()
        .name("service-logs".into())
        .spawn(move || counter.run());
    if spawned.is_err() {
        // No thread: no taps, so nothing queues up unread.
        return ServiceTaps { taps: Vec::new() };
    }
    ServiceTaps { taps }
}

struct Counted {
    service: String,
    rule: LevelRule,
    dropped: Arc<AtomicI64>,
    levels: BTreeMap<Level, i64>,
    recent: HashMap<Level, Instant>,
}

struct Counter {
    services: Vec<Counted>,
    rx: Receiver<(usize, Vec<u8>)>,
    interval: Duration,
    sink: PointSender,
}

impl Counter {
    fn run(mut self) {
        let mut next = Instant::now() + self.interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            let ended = match self.rx.recv_timeout(wait) {
                Ok((i, line)) => {
                    if let Some(s) = self.services.get_mut(i) {
                        *s.levels.entry(s.rule.level(&line)).or_default() += 1;
                    }
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            if ended || Instant::now() >= next {
                let points = self.flush(model::now_ns());
                self.sink.send(points);
                next += self.interval;
                if next < Instant::now() {
                    next = Instant::now() + self.interval;
                }
            }
            if ended {
                return;
            }
        }
    }

    fn flush(&mut self, ts_ns: i64) -> Vec<Point> {
        let now = Instant::now();
        let mut out = Vec::new();
        for s in &mut self.services {
            let mut levels = std::mem::take(&mut s.levels);
            keep_zeros(&mut levels, &mut s.recent, now);
            let point = |m: &str| Point::new(m, ts_ns).tag("service", s.service.clone());
            for (level, n) in levels {
                out.push(
                    point("service_log_lines")
                        .tag("level", level.as_str())
                        .int("count", n),
                );
            }
            let dropped = s.dropped.swap(0, Ordering::Relaxed);
            out.push(point("service_log_dropped").int("count", dropped));
        }
        out
    }
}
