//! The sampler alone against one server, for bench/sampler.sh.
//!
//! ```text
//! sample_loop URL INTERVAL [--store FILE]  sample every INTERVAL into an embedded store (in a
//!                                          temp dir, or FILE) until SIGTERM or Ctrl-C (part a:
//!                                          its cost to tps)
//! sample_loop URL INTERVAL --cycles N      N cycles INTERVAL apart; prints each cycle's time
//!   [--dump FILE]                          after the first (which connects) and writes the last
//!                                          cycle's points as JSON (part b; store_bench --cycle)
//! ```
//!
//! URL: `postgresql://USER[:PASSWORD]@HOST:PORT/DB`. INTERVAL: `1s`, `100ms`.

use std::time::{Duration, Instant};

use model::Secret;
use sampler::{NodeTarget, Sampler, SamplerOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        usage("need URL and INTERVAL");
    }
    let node =
        parse_url(&args[0]).unwrap_or_else(|| usage("URL must be postgresql://USER[:PASSWORD]@HOST:PORT/DB"));
    let interval = parse_interval(&args[1]).unwrap_or_else(|| usage("INTERVAL must be like 1s or 100ms"));
    let mut cycles: Option<usize> = None;
    let mut dump: Option<String> = None;
    let mut store_file: Option<String> = None;
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--cycles" => {
                cycles = rest
                    .next()
                    .and_then(|n| n.parse().ok())
                    .or_else(|| usage("--cycles N"))
            }
            "--dump" => dump = rest.next().cloned().or_else(|| usage("--dump FILE")),
            "--store" => store_file = rest.next().cloned().or_else(|| usage("--store FILE")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let opts = SamplerOptions {
        interval,
        nodes: vec![node],
        replications: Vec::new(),
        custom: Vec::new(),
        statement_timeout: Duration::from_secs(1),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match cycles {
        Some(n) => runtime.block_on(measure(opts, n, dump)),
        None => runtime.block_on(run_until_signal(opts, store_file)),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "sample_loop: {problem}\nusage: sample_loop URL INTERVAL [--store FILE | --cycles N [--dump FILE]]"
    );
    std::process::exit(2);
}

fn parse_url(url: &str) -> Option<NodeTarget> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))?;
    let (auth, rest) = rest.split_once('@')?;
    let (hostport, db) = rest.split_once('/')?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (host, port) = hostport.rsplit_once(':')?;
    Some(NodeTarget {
        name: "bench".into(),
        host: host.into(),
        port: port.parse().ok()?,
        user: user.into(),
        password: Secret::new(password),
        dbname: db.into(),
        postmaster_pid: None,
        local: true,
    })
}

fn parse_interval(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?.parse().ok().map(Duration::from_secs_f64)
}

async fn run_until_signal(opts: SamplerOptions, file: Option<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = file
        .map(Into::into)
        .unwrap_or_else(|| dir.path().join("metrics.db"));
    let store = store::start(store::StoreOptions {
        embedded: Some(store::EmbeddedOptions {
            path,
            retention: Duration::from_secs(3600),
        }),
        ..Default::default()
    })
    .expect("store");
    let (events, mut events_rx) = tokio::sync::mpsc::channel(64);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let sampling = tokio::spawn(sampler::run(opts, store.points(), events, stop));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            Some(event) = events_rx.recv() => eprintln!("sample_loop: {event}"),
        }
    }
    let _ = stop_tx.send(true);
    let _ = sampling.await;
    store.flush().await;
    let stats = store.stats();
    eprintln!("sample_loop: stored {:?}", stats.sinks.first().map(|s| s.written));
}

async fn measure(opts: SamplerOptions, n: usize, dump: Option<String>) {
    let interval = opts.interval;
    let mut sampler = Sampler::new(opts).expect("options");
    let mut tick = tokio::time::interval(interval);
    let mut times = Vec::new();
    let mut last = Vec::new();
    for i in 0..=n {
        tick.tick().await;
        let started = Instant::now();
        last = sampler.sample_once().await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if i > 0 {
            println!("cycle_ms {ms:.3}");
            times.push(ms);
        }
    }
    let errors: Vec<_> = last.iter().filter(|p| p.measurement == "sample_errors").collect();
    if !errors.is_empty() {
        eprintln!("sample_loop: collectors failed: {errors:?}");
        std::process::exit(1);
    }
    times.sort_by(f64::total_cmp);
    if let Some(median) = times.get(times.len() / 2) {
        println!(
            "cycles {} points_per_cycle {} median_ms {median:.3}",
            times.len(),
            last.len()
        );
    }
    if let Some(path) = dump {
        std::fs::write(&path, serde_json::to_string(&last).expect("json")).expect("write dump");
    }
}
