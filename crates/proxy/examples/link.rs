//! Runs one proxy link in front of an address until SIGINT/SIGTERM, for
//! benchmarks and poking by hand:
//!
//!   cargo run -p proxy --example link -- 127.0.0.1:5432 [LISTEN_ADDR]
//!
//! Prints the port it listens on (one line, on stdout) once it is ready, and
//! its stats on stderr when it stops. Faults are not exposed here: the daemon
//! and `prodhome chaos` apply them; this is the no-fault path the benchmark
//! measures.
//!
//! It runs on one current-thread runtime, as the daemon runs its links;
//! `PROXY_THREADS=N` (N > 1) runs it on a multi-thread runtime of N workers
//! instead, for comparing the two.

use std::net::SocketAddr;

use tokio::signal::unix::{SignalKind, signal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: usize = match std::env::var("PROXY_THREADS") {
        Ok(v) => v.parse()?,
        Err(_) => 1,
    };
    let runtime = if threads > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: link UPSTREAM_ADDR [LISTEN_ADDR]";
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let mut opts = proxy::LinkOptions::new("example", upstream);
    if let Some(listen) = args.next() {
        opts.listen = listen.parse()?;
    }
    let link = proxy::start(opts).await?;
    println!("{}", link.addr().port());

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("{:?}", link.stats());
    link.shutdown().await;
    Ok(())
}
