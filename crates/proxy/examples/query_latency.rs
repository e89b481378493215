//! Per-query latency of a prepared `select 1` from one client against several
//! ports of the same Postgres server (direct, through a proxy link, …),
//! taking turns in blocks so every side sees the same background noise:
//!
//!   cargo run -p proxy --example query_latency -- QUERIES BLOCK NAME=PORT...
//!   cargo run -p proxy --example query_latency -- 20000 500 direct=5432 link=40001
//!
//! Connects as `postgres` to database `postgres` on 127.0.0.1 (trust
//! authentication, as the benchmark's server is set up). Prints one line per
//! side: `NAME p50_us P50 p99_us P99 mean_us MEAN n N`.

use std::time::Instant;

use tokio_postgres::{Client, NoTls, Statement};

struct Side {
    name: String,
    client: Client,
    stmt: Statement,
    samples: Vec<u64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: query_latency QUERIES BLOCK NAME=PORT...";
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err(usage.into());
    }
    let queries: usize = args[0].parse()?;
    let block: usize = args[1].parse::<usize>()?.max(1);

    let mut sides = Vec::new();
    for arg in &args[2..] {
        let (name, port) = arg.split_once('=').ok_or(usage)?;
        let url = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
        let label = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("{label}: connection failed: {e}");
            }
        });
        let stmt = client.prepare("select 1").await?;
        // Warm up: plan cache, socket buffers, the proxy's first chunk.
        for _ in 0..200 {
            client.query_one(&stmt, &[]).await?;
        }
        sides.push(Side {
            name: name.to_string(),
            client,
            stmt,
            samples: Vec::with_capacity(queries),
        });
    }

    let mut done = 0;
    let mut round = 0;
    while done < queries {
        let n = block.min(queries - done);
        // Rotate who goes first, so no side always follows the same one.
        for i in 0..sides.len() {
            let k = (i + round) % sides.len();
            let side = &mut sides[k];
            for _ in 0..n {
                let t = Instant::now();
                side.client.query_one(&side.stmt, &[]).await?;
                side.samples.push(t.elapsed().as_nanos() as u64);
            }
        }
        done += n;
        round += 1;
    }

    for mut side in sides {
        side.samples.sort_unstable();
        let s = &side.samples;
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        let mean = s.iter().sum::<u64>() as f64 / s.len() as f64 / 1000.0;
        println!(
            "{} p50_us {:.1} p99_us {:.1} mean_us {mean:.1} n {}",
            side.name,
            at(0.5),
            at(0.99),
            s.len()
        );
    }
    Ok(())
}
