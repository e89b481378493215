//! Counting: latency histograms (HdrHistogram, microseconds), commits by
//! kind, errors by SQLSTATE, reconnects; the [`Summary`] a run returns.
//!
//! Clients record into one [`Stats`] under a mutex held for a few
//! nanoseconds per transaction. Besides the whole-run histogram it keeps
//! two windows that the reporters take and reset: one for the Points sent
//! every second, one for the progress lines. Each client also publishes
//! when its current transaction was due, so a window's max latency counts
//! transactions still in flight: a stalled server shows as rising latency
//! even before anything completes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies up to an hour, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub(crate) struct Stats {
    start: Instant,
    inner: Mutex<Counters>,
    /// Per client: when its in-flight transaction was due, in µs since
    /// `start` plus one; 0 when idle.
    in_flight: Vec<AtomicU64>,
}

struct Counters {
    total: Histogram<u64>,
    windows: [Window; 2],
    transactions: u64,
    errors: u64,
    by_code: BTreeMap<String, u64>,
    kinds: BTreeMap<&'static str, u64>,
    long: u64,
    reconnects: u64,
    connect_failures: u64,
    disconnects: u64,
    skipped: u64,
    abandoned: u64,
}

struct Window {
    hist: Histogram<u64>,
    since: Instant,
    transactions: u64,
}

/// Which window a reporter takes.
#[derive(Clone, Copy)]
pub(crate) enum Which {
    Points = 0,
    Progress = 1,
}

/// One window's numbers, plus the cumulative counters.
pub(crate) struct WindowReport {
    pub(crate) tps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// The window's max latency or the oldest in-flight transaction's age.
    pub(crate) max_ms: f64,
    pub(crate) transactions: u64,
    pub(crate) errors: u64,
    pub(crate) reconnects: u64,
}

impl Stats {
    /// Stats of `clients` clients whose run starts at `start`.
    pub(crate) fn new(clients: u32, start: Instant) -> Stats {
        let window = || Window {
            hist: histogram(),
            since: start,
            transactions: 0,
        };
        Stats {
            start,
            inner: Mutex::new(Counters {
                total: histogram(),
                windows: [window(), window()],
                transactions: 0,
                errors: 0,
                by_code: BTreeMap::new(),
                kinds: BTreeMap::new(),
                long: 0,
                reconnects: 0,
                connect_failures: 0,
                disconnects: 0,
                skipped: 0,
                abandoned: 0,
            }),
            in_flight: (0..clients).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic elsewhere must not stop the counting.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Client `client`'s transaction that was due at `due` is in flight.
    pub(crate) fn begin(&self, client: usize, due: Instant) {
        let us = due.saturating_duration_since(self.start).as_micros() as u64;
        self.in_flight[client].store(us + 1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self, client: usize) {
        self.in_flight[client].store(0, Ordering::Relaxed);
    }

    /// A committed transaction of `kind`; long ones stay out of the
    /// histograms (their latency is their deliberate hold).
    pub(crate) fn committed(&self, kind: &'static str, latency: Duration, long: bool) {
        let us = latency.as_micros().max(1) as u64;
        let mut c = self.lock();
        c.transactions += 1;
        *c.kinds.entry(kind).or_default() += 1;
        if long {
            c.long += 1;
            return;
        }
        c.total.saturating_record(us);
        for w in &mut c.windows {
            w.hist.saturating_record(us);
        }
    }

    /// A transaction that failed with SQLSTATE `code`.
    pub(crate) fn failed(&self, code: &str) {
        let mut c = self.lock();
        c.errors += 1;
        match c.by_code.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                c.by_code.insert(code.to_string(), 1);
            }
        }
    }

    pub(crate) fn reconnected(&self) {
        self.lock().reconnects += 1;
    }

    pub(crate) fn connect_failed(&self) {
        self.lock().connect_failures += 1;
    }

    pub(crate) fn disconnected(&self) {
        self.lock().disconnects += 1;
    }

    pub(crate) fn skipped(&self) {
        self.lock().skipped += 1;
    }

    pub(crate) fn abandoned(&self) {
        self.lock().abandoned += 1;
    }

    /// Takes window `which` and starts a new one.
    pub(crate) fn take(&self, which: Which) -> WindowReport {
        let now = Instant::now();
        let oldest_us = self
            .in_flight
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&v| v > 0)
            .map(|v| (now.saturating_duration_since(self.start).as_micros() as u64).saturating_sub(v - 1))
            .max()
            .unwrap_or(0);
        let mut c = self.lock();
        let transactions = c.transactions;
        let w = &mut c.windows[which as usize];
        let elapsed = now.saturating_duration_since(w.since);
        let done = transactions - w.transactions;
        let ms = |us: u64| us as f64 / 1000.0;
        let report = WindowReport {
            tps: done as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: ms(w.hist.value_at_quantile(0.5)),
            p99_ms: ms(w.hist.value_at_quantile(0.99)),
            max_ms: ms(w.hist.max().max(oldest_us)),
            transactions,
            errors: 0,
            reconnects: 0,
        };
        w.hist.reset();
        w.since = now;
        w.transactions = transactions;
        WindowReport {
            errors: c.errors,
            reconnects: c.reconnects,
            ..report
        }
    }

    /// The numbers so far.
    pub(crate) fn summary(&self, elapsed: Duration) -> Summary {
        let c = self.lock();
        let ms = |us: u64| us as f64 / 1000.0;
        let secs = elapsed.as_secs_f64();
        Summary {
            transactions: c.transactions,
            errors: c.errors,
            errors_by_sqlstate: c.by_code.clone(),
            kinds: c.kinds.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            long_transactions: c.long,
            reconnects: c.reconnects,
            connect_failures: c.connect_failures,
            disconnects: c.disconnects,
            skipped: c.skipped,
            abandoned: c.abandoned,
            duration_s: secs,
            tps: if secs > 0.0 {
                c.transactions as f64 / secs
            } else {
                0.0
            },
            latency_ms: Latency {
                mean: c.total.mean() / 1000.0,
                p50: ms(c.total.value_at_quantile(0.5)),
                p90: ms(c.total.value_at_quantile(0.9)),
                p99: ms(c.total.value_at_quantile(0.99)),
                p999: ms(c.total.value_at_quantile(0.999)),
                max: ms(c.total.max()),
            },
            ..Summary::default()
        }
    }
}

/// What a run did. `--json` prints it as one object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub node: String,
    pub workload: String,
    pub clients: u32,
    /// Transactions per second asked for; `None` for max (closed loop).
    pub rate: Option<f64>,
    pub seed: u64,
    /// Committed transactions (long ones included).
    pub transactions: u64,
    /// Transactions that failed (not committed).
    pub errors: u64,
    /// Failed transactions by SQLSTATE; a connection lost mid-transaction
    /// is 08006, a statement the client gave up on at the end is not here
    /// but in `abandoned`.
    pub errors_by_sqlstate: BTreeMap<String, u64>,
    /// Committed transactions by kind (`tpcb`, `insert`, `update`, `read`,
    /// `script`, `long`).
    pub kinds: BTreeMap<String, u64>,
    pub long_transactions: u64,
    /// Connections re-opened after being lost.
    pub reconnects: u64,
    /// Connection attempts that failed (each retried with backoff).
    pub connect_failures: u64,
    /// Connections dropped on purpose (stochastic disconnects).
    pub disconnects: u64,
    /// Open loop: transactions not started because they were already more
    /// than 10 s late (the server was down that long).
    pub skipped: u64,
    /// Transactions still in flight when the run ended and did not finish
    /// within the grace period; they may or may not have committed.
    pub abandoned: u64,
    pub duration_s: f64,
    /// Committed transactions per second.
    pub tps: f64,
    /// Latency of committed transactions (open loop: from the scheduled
    /// start), long transactions excluded.
    pub latency_ms: Latency,
    /// Entries written to the ledger.
    pub ledger_entries: u64,
    /// Set when the ledger could not be written: then it proves nothing.
    pub ledger_error: Option<String>,
    /// Points not sent because the channel was full.
    pub points_dropped: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = match self.rate {
            Some(r) => format!("{r} tps (open loop)"),
            None => "max (closed loop)".to_string(),
        };
        writeln!(f, "node: {}", self.node)?;
        writeln!(f, "workload: {}", self.workload)?;
        writeln!(f, "clients: {}, rate: {rate}, seed: {}", self.clients, self.seed)?;
        writeln!(f, "duration: {:.1} s", self.duration_s)?;
        let kinds: Vec<String> = self.kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(f, "transactions: {} ({})", self.transactions, kinds.join(", "))?;
        writeln!(f, "tps: {:.1}", self.tps)?;
        let l = &self.latency_ms;
        writeln!(
            f,
            "latency ms: mean {:.3}, p50 {:.3}, p90 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
            l.mean, l.p50, l.p90, l.p99, l.p999, l.max
        )?;
        write!(f, "errors: {}", self.errors)?;
        for (code, n) in &self.errors_by_sqlstate {
            write!(
                f,
                "\n  {code}: {n}{}",
                code_meaning(code).map(|m| format!(" ({m})")).unwrap_or_default()
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "connections: {} reconnects, {} failed attempts, {} deliberate disconnects",
            self.reconnects, self.connect_failures, self.disconnects
        )?;
        if self.long_transactions > 0 {
            writeln!(f, "long transactions: {}", self.long_transactions)?;
        }
        if self.skipped > 0 || self.abandoned > 0 {
            writeln!(
                f,
                "skipped (too late): {}, abandoned at the end: {}",
                self.skipped, self.abandoned
            )?;
        }
        if self.ledger_entries > 0 || self.ledger_error.is_some() {
            write!(f, "ledger: {} entries", self.ledger_entries)?;
            if let Some(e) = &self.ledger_error {
                write!(f, ", INCOMPLETE: {e}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// What the SQLSTATEs hum meets most often mean.
fn code_meaning(code: &str) -> Option<&'static str> {
    Some(match code {
        "08006" => "connection lost",
        "08001" => "could not connect",
        "40001" => "serialization failure",
        "40P01" => "deadlock",
        "55P03" => "lock not available",
        "57014" => "query canceled",
        "57P01" => "server shutting down",
        "57P03" => "server starting up",
        "53300" => "too many connections",
        "23505" => "duplicate key",
        "25P02" => "transaction aborted",
        "22012" => "division by zero",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_totals_keep() {
        let stats = Stats::new(2, Instant::now());
        for ms in [1, 2, 3, 100] {
            stats.committed("tpcb", Duration::from_millis(ms), false);
        }
        stats.committed("long", Duration::from_secs(2), true);
        stats.failed("40P01");
        stats.failed("40P01");
        let w = stats.take(Which::Points);
        assert_eq!((w.transactions, w.errors), (5, 2));
        assert!((99.0..101.0).contains(&w.max_ms), "{}", w.max_ms);
        let w = stats.take(Which::Points);
        assert_eq!(w.max_ms, 0.0);
        let s = stats.summary(Duration::from_secs(1));
        assert_eq!((s.transactions, s.long_transactions, s.errors), (5, 1, 2));
        assert_eq!(s.errors_by_sqlstate["40P01"], 2);
        assert!((99.0..101.0).contains(&s.latency_ms.max));
        assert!(s.to_string().contains("40P01: 2 (deadlock)"), "{s}");
    }

    #[test]
    fn in_flight_age_counts_as_latency() {
        let start = Instant::now() - Duration::from_secs(2);
        let stats = Stats::new(1, start);
        stats.begin(0, start + Duration::from_millis(500));
        let w = stats.take(Which::Progress);
        assert!(w.max_ms >= 1500.0, "{}", w.max_ms);
        stats.end(0);
        assert!(stats.take(Which::Progress).max_ms < 1500.0);
    }
}
