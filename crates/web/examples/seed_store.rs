//! Fills an embedded store with a seed lab's worth of history, for the
//! dashboard benchmark: three nodes (publisher, subscriber1, subscriber2)
//! sampled every second with the series the sampler and hum write (see the
//! sampler crate's docs), plus the events of a subscriber killed halfway.
//!
//!     cargo run -p web --example seed_store -- DB [SECONDS] [LINE_PROTOCOL_FILE]
//!
//! SECONDS defaults to 3600. With LINE_PROTOCOL_FILE, the same points are
//! also written there as InfluxDB line protocol (for the peer in
//! bench/dashboard.sh).

use std::io::Write;
use std::time::{Duration, Instant};

use model::{Event, EventKind, Exit, FieldValue, Point};
use store::{EmbeddedOptions, EmbeddedWriter};

const S: i64 = 1_000_000_000;
const NODES: [&str; 3] = ["publisher", "subscriber1", "subscriber2"];
const SUBSCRIBERS: [&str; 2] = ["subscriber1", "subscriber2"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(db) = args.first() else {
        eprintln!("usage: seed_store DB [SECONDS] [LINE_PROTOCOL_FILE]");
        std::process::exit(2);
    };
    let secs: i64 = args
        .get(1)
        .map_or(3600, |s| s.parse().expect("SECONDS is a number"));
    let mut lp = args
        .get(2)
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("create the line protocol file")));
    let _ = std::fs::remove_file(db);
    let mut writer = EmbeddedWriter::open(&EmbeddedOptions {
        path: db.into(),
        retention: Duration::from_secs(7 * 86_400),
    })
    .expect("open the store");
    let started = Instant::now();
    let now = model::now_ns();
    let t0 = now - now.rem_euclid(S) - (secs - 1) * S;
    let mut events = vec![];
    for node in NODES {
        events.push(event(t0, node, EventKind::Started { pid: 100 }));
        events.push(event(t0 + S / 2, node, EventKind::Ready));
    }
    let kill = t0 + secs / 2 * S;
    events.push(event(
        kill,
        "subscriber1",
        EventKind::Exited {
            exit: Exit {
                code: None,
                signal: Some(9),
            },
            expected: false,
        },
    ));
    events.push(event(
        kill + S / 5,
        "subscriber1",
        EventKind::Restarting {
            attempt: 1,
            after_ms: 200,
        },
    ));
    events.push(event(kill + S, "subscriber1", EventKind::Ready));
    let mut total = 0;
    for chunk in (0..secs).collect::<Vec<_>>().chunks(60) {
        let mut points = Vec::new();
        for &i in chunk {
            let down = (kill..kill + 2 * S).contains(&(t0 + i * S));
            for node in NODES {
                if !(down && node == "subscriber1") {
                    cycle(&mut points, node, t0 + i * S, i);
                }
            }
        }
        if let Some(out) = lp.as_mut() {
            for p in &points {
                writeln!(out, "{}", line(p)).expect("write line protocol");
            }
        }
        total += points.iter().map(|p| p.fields.len()).sum::<usize>();
        let evs: Vec<Event> = events
            .iter()
            .filter(|e| (t0 + chunk[0] * S..=t0 + chunk[chunk.len() - 1] * S + S).contains(&e.ts_ns))
            .cloned()
            .collect();
        writer.write(&points, &evs).expect("write");
    }
    eprintln!(
        "wrote {total} samples ({secs} s x {} nodes) to {db} in {:.1} s",
        NODES.len(),
        started.elapsed().as_secs_f64()
    );
}

fn event(ts_ns: i64, unit: &str, kind: EventKind) -> Event {
    Event {
        ts_ns,
        unit: unit.into(),
        kind,
    }
}

/// What one sampling cycle of one node writes (plus hum on the publisher).
fn cycle(out: &mut Vec<Point>, node: &str, ts: i64, i: i64) {
    let wave = |period: f64, phase: f64| ((i as f64 / period + phase).sin() + 1.0) / 2.0;
    let p = |m: &str| Point::new(m, ts).tag("node", node);
    let publisher = node == "publisher";
    out.push(
        p("locks")
            .int("waiting", (wave(40.0, 0.0) * 3.0) as i64)
            .int("blocked", (wave(40.0, 0.0) * 2.0) as i64)
            .float("oldest_wait_s", wave(40.0, 1.0) * 2.5)
            .int("longest_chain", (wave(40.0, 0.0) * 2.0) as i64),
    );
    let modes: &[(&str, &str)] = if publisher {
        &[
            ("AccessShareLock", "relation"),
            ("RowExclusiveLock", "relation"),
            ("ExclusiveLock", "virtualxid"),
            ("ExclusiveLock", "transactionid"),
            ("ShareLock", "transactionid"),
            ("RowShareLock", "relation"),
        ]
    } else {
        &[
            ("AccessShareLock", "relation"),
            ("RowExclusiveLock", "relation"),
            ("ExclusiveLock", "virtualxid"),
        ]
    };
    for (k, (mode, locktype)) in modes.iter().enumerate() {
        for granted in ["true", "false"] {
            let n = if granted == "true" {
                1.0 + wave(20.0, k as f64) * 8.0
            } else {
                wave(30.0, k as f64) * 2.0
            };
            out.push(
                p("locks")
                    .tag("mode", *mode)
                    .tag("locktype", *locktype)
                    .tag("granted", granted)
                    .int("count", n as i64),
            );
        }
    }
    out.push(
        p("activity")
            .int("backends", 10)
            .int("client_backends", 6)
            .int("idle_in_transaction", (wave(25.0, 0.0) * 2.0) as i64)
            .float("oldest_xact_s", wave(25.0, 0.5) * 3.0)
            .float("oldest_query_s", wave(25.0, 0.7)),
    );
    for (state, wait) in [
        ("active", "none"),
        ("active", "Lock"),
        ("active", "IO"),
        ("idle", "Client"),
        ("idle_in_transaction", "Client"),
    ] {
        out.push(
            p("activity")
                .tag("state", state)
                .tag("wait_event_type", wait)
                .int("count", (wave(15.0, state.len() as f64) * 3.0) as i64),
        );
    }
    for datname in ["postgres", "bookstore"] {
        let mut d = p("database").tag("datname", datname);
        for &field in sampler::DATABASE_COUNTERS {
            d = d.float(field, wave(50.0, field.len() as f64) * 100.0);
        }
        out.push(d);
    }
    if publisher {
        for (k, sub) in SUBSCRIBERS.iter().enumerate() {
            let lag = (wave(60.0, k as f64) * 200_000.0) as i64;
            out.push(
                p("replication")
                    .tag("slot", format!("books_{sub}"))
                    .tag("replication", "books")
                    .tag("subscriber", *sub)
                    .int("active", 1)
                    .int("retained_bytes", 1_000_000 + lag * 3)
                    .int("lag_bytes", lag)
                    .float("confirmed_lag_s", wave(60.0, k as f64) * 0.5)
                    .float("write_lag_s", 0.001)
                    .float("flush_lag_s", 0.002)
                    .float("replay_lag_s", 0.002),
            );
        }
        out.push(
            p("hum")
                .tag("workload", "books")
                .float("tps", 190.0 + wave(30.0, 0.0) * 20.0)
                .float("latency_p50_ms", 1.5 + wave(30.0, 1.0))
                .float("latency_p99_ms", 6.0 + wave(30.0, 2.0) * 10.0)
                .float("latency_max_ms", 30.0 + wave(30.0, 2.0) * 20.0)
                .int("transactions", 200)
                .int("errors", 0)
                .int("reconnects", 0),
        );
    } else {
        out.push(
            p("replication")
                .tag("subscription", format!("books_{node}"))
                .int("workers", 1)
                .int("apply_running", 1)
                .int("apply_errors", 0)
                .int("sync_errors", 0)
                .float("last_msg_age_s", wave(10.0, 0.0)),
        );
        out.push(
            p("replication")
                .tag("replication", "books")
                .tag("publisher", "publisher")
                .float("heartbeat_age_s", 0.2 + wave(60.0, 0.0) * 0.8),
        );
    }
    out.push(
        p("process")
            .int("processes", 9)
            .int("rss_bytes", 180_000_000 + (wave(100.0, 0.0) * 2e7) as i64)
            .int("pss_bytes", 40_000_000 + (wave(100.0, 0.0) * 1e7) as i64)
            .float(
                "cpu_percent",
                5.0 + wave(20.0, 0.0) * (if publisher { 60.0 } else { 15.0 }),
            ),
    );
    out.push(
        p("sampler")
            .float("duration_s", 0.004)
            .int("errors", 0)
            .int("skipped_ticks", 0),
    );
}

/// InfluxDB line protocol for one point (the names here need no escaping).
fn line(p: &Point) -> String {
    let mut s = p.measurement.clone();
    for (k, v) in &p.tags {
        s.push_str(&format!(",{k}={v}"));
    }
    let fields: Vec<String> = p
        .fields
        .iter()
        .map(|(k, v)| match v {
            FieldValue::I64(i) => format!("{k}={i}i"),
            FieldValue::F64(f) => format!("{k}={f}"),
            FieldValue::Bool(b) => format!("{k}={b}"),
            FieldValue::Str(t) => format!("{k}={t:?}"),
        })
        .collect();
    format!("{s} {} {}", fields.join(","), p.ts_ns)
}
