//! The engine layer against the real Docker Engine: the image built offline
//! (cold, then cached), two Postgres containers replicating by container
//! name on the lab network, faults seen (kill, pause, partition), stats
//! sampled, a taken port refused cleanly, and `down` leaving nothing.
//!
//! Every test uses its own lab label and removes everything carrying it when
//! it ends, passed or failed (the `Lab` guard). Without an engine the tests
//! skip and say why (and fail under `PRODHOME_TEST_NO_SKIP=1`).

use std::net::{Ipv4Addr, TcpListener};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use engine::{ContainerSpec, Engine, EngineError, ImageSpec};
use futures_util::StreamExt;

/// How long a container may take to accept connections on a loaded machine.
const READY: Duration = Duration::from_secs(120);

async fn engine_or_skip() -> Option<Engine> {
    match Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(e) => {
            testkit::skip(&format!("no usable Docker Engine: {e}"));
            None
        }
    }
}

/// A unique lab name per test and process, so tests run in parallel.
fn unique(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

/// Removes every object of the lab (volumes too) on drop, even after a panic.
struct Lab {
    name: String,
    engine: Engine,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let (engine, name) = (self.engine.clone(), self.name.clone());
        // Drop cannot await: clean up on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(engine.down(&name, true))
        })
        .join();
    }
}

/// The shared Postgres image, built once per test process.
fn postgres_image(engine: &Engine) -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(engine.build_postgres_image(15))
                    .expect("build the postgres image")
            })
            .join()
            .unwrap()
            .reference
        })
        .clone()
}

fn free_port() -> u16 {
    testkit::free_port()
}

/// Polls `check` every 200 ms until it gives a value or `limit` passes.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connect_pg(port: u16) -> Option<tokio_postgres::Client> {
    let config = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2");
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.ok()?;
    Some(client)
}

/// Creates and starts a Postgres node; waits until the host can query it.
async fn node(engine: &Engine, lab: &str, name: &str) -> (String, u16, tokio_postgres::Client) {
    let port = free_port();
    let spec = ContainerSpec::new(lab, name, &postgres_image(engine), port);
    let container = engine.create_postgres(&spec).await.expect("create");
    engine.start(&container, port).await.expect("start");
    let client = poll(&format!("{container} to accept connections"), READY, || {
        connect_pg(port)
    })
    .await;
    (container, port, client)
}

async fn count(client: &tokio_postgres::Client) -> Option<i64> {
    let row = client.query_one("SELECT count(*) FROM t", &[]).await.ok()?;
    Some(row.get(0))
}

mod image;
mod lifecycle;
mod replication;
