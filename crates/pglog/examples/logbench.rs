//! The log reader's benchmark (bench/logs.sh):
//!
//! - `logbench gen FILE LINES` writes a jsonlog file of LINES messages, a
//!   mix of what a busy lab logs (slow statements, errors of several
//!   SQLSTATEs, lock waits, deadlocks, checkpoints, autovacuum,
//!   connections);
//! - `logbench read FILE…` parses, classifies and tallies every line as
//!   the daemon does and prints `lines=N seconds=S lines_per_second=R`
//!   and what it counted.

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 4 => match args[3].parse() {
            Ok(n) => generate(&args[2], n),
            Err(_) => Err(format!("LINES must be a number, not {:?}", args[3])),
        },
        Some("read") if args.len() > 2 => read(&args[2..]),
        _ => Err("usage: logbench gen FILE LINES | logbench read FILE...".into()),
    };
    if let Err(e) = result {
        eprintln!("logbench: {e}");
        std::process::exit(2);
    }
}

/// The message of line `i` (a deterministic mix) as (severity, sqlstate, message, detail, statement).
fn message(i: u64) -> (&'static str, &'static str, String, Option<String>, Option<String>) {
    let update = format!("UPDATE stock SET qty = qty - {} WHERE id = {}", i % 7, i % 1000);
    match i % 100 {
        0..=59 => (
            "LOG",
            "00000",
            format!(
                "duration: {}.{:03} ms  statement: SELECT * FROM orders WHERE id = {} AND note = 'n{}'",
                250 + i % 500,
                i % 1000,
                i,
                i % 13
            ),
            None,
            None,
        ),
        60..=69 => (
            "ERROR",
            "23505",
            "duplicate key value violates unique constraint \"orders_pkey\"".into(),
            Some(format!("Key (id)=({i}) already exists.")),
            Some(format!("INSERT INTO orders VALUES ({i})")),
        ),
        70..=74 => (
            "ERROR",
            "22012",
            "division by zero".into(),
            None,
            Some(format!("SELECT {i}/0")),
        ),
        75..=79 => (
            "LOG",
            "00000",
            format!(
                "process {} still waiting for ShareLock on transaction {} after 1000.{:03} ms",
                1000 + i % 50,
                i,
                i % 1000
            ),
            Some(format!(
                "Process holding the lock: {}. Wait queue: {}.",
                2000 + i % 50,
                1000 + i % 50
            )),
            Some(update),
        ),
        80..=81 => (
            "ERROR",
            "40P01",
            "deadlock detected".into(),
            Some(format!(
                "Process 1 waits for ShareLock on transaction {i}; blocked by process 2.\nProcess 2 waits for ShareLock on transaction {}; blocked by process 1.\nProcess 1: {update}\nProcess 2: UPDATE stock SET qty = 0 WHERE id = 1",
                i + 1
            )),
            Some(update),
        ),
        82..=84 => (
            "LOG",
            "00000",
            format!(
                "checkpoint complete: wrote {} buffers (0.1%); 0 WAL file(s) added, 0 removed, 1 recycled; write=0.{:03} s, sync=0.002 s, total=0.{:03} s; sync files=3, longest=0.001 s, average=0.001 s; distance=100 kB, estimate=100 kB",
                i % 500,
                i % 900,
                i % 999
            ),
            None,
            None,
        ),
        85..=89 => (
            "LOG",
            "00000",
            format!(
                "automatic vacuum of table \"postgres.public.t{}\": index scans: 0\npages: 0 removed, 10 remain\nsystem usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.{:02} s",
                i % 10,
                i % 100
            ),
            None,
            None,
        ),
        90..=94 => (
            "FATAL",
            "28P01",
            "password authentication failed for user \"app\"".into(),
            Some("Connection matched pg_hba.conf line 2".into()),
            None,
        ),
        _ => (
            "LOG",
            "00000",
            "connection authorized: user=app database=postgres application_name=hum".into(),
            None,
            None,
        ),
    }
}

fn generate(path: &str, lines: u64) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = BufWriter::new(file);
    for i in 0..lines {
        let (severity, code, message, detail, statement) = message(i);
        let (s, ms) = (i / 1000, i % 1000);
        let mut line = json!({
            "timestamp": format!("2026-12-01 {:02}:{:02}:{:02}.{ms:03} UTC", (s / 3600) % 24, (s / 60) % 60, s % 60),
            "user": "app", "dbname": "postgres", "pid": 1000 + i % 50,
            "remote_host": "127.0.0.1", "remote_port": 40000 + i % 50,
            "session_id": format!("6565a1b2.{:x}", 1000 + i % 50), "line_num": i,
            "ps": "SELECT", "session_start": "2026-12-01 00:00:00 UTC",
            "vxid": format!("3/{i}"), "txid": 0,
            "error_severity": severity, "state_code": code, "message": message,
            "application_name": "hum", "backend_type": "client backend", "query_id": 0,
        });
        if let Some(d) = detail {
            line["detail"] = json!(d);
        }
        if let Some(st) = statement {
            line["statement"] = json!(st);
        }
        writeln!(out, "{line}").map_err(|e| format!("{path}: {e}"))?;
    }
    out.flush().map_err(|e| format!("{path}: {e}"))
}

fn read(paths: &[String]) -> Result<(), String> {
    let start = Instant::now();
    let mut tally = pglog::Tally::new("bench");
    let mut unparsed = 0u64;
    for path in paths {
        let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
            let line = line.map_err(|e| format!("{path}: {e}"))?;
            match pglog::Record::parse(&line) {
                Ok(r) => {
                    tally.add(&r, start);
                }
                Err(_) => unparsed += 1,
            }
        }
    }
    let points = tally.flush(0, 0, 0);
    let seconds = start.elapsed().as_secs_f64();
    let lines = tally.records + unparsed;
    println!(
        "lines={lines} seconds={seconds:.3} lines_per_second={:.0}",
        lines as f64 / seconds
    );
    let count = |m: &str| -> i64 {
        points
            .iter()
            .filter(|p| p.measurement == m)
            .filter_map(|p| match p.fields.get("count") {
                Some(model::FieldValue::I64(n)) => Some(*n),
                _ => None,
            })
            .sum()
    };
    println!(
        "counted: deadlocks={} lock_waits={} checkpoints={} slow_statements={} unparsed={unparsed}",
        count("pg_deadlocks"),
        count("pg_lock_waits"),
        count("pg_checkpoints"),
        count("pg_slow_statements")
    );
    Ok(())
}
