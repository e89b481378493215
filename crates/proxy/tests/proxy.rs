//! Links over real sockets: an echo server, and real Postgres servers
//! (testkit::PgNode) reached through the link with tokio-postgres. Timing
//! assertions are lower bounds only; everything else waits with a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proxy::{Fault, FaultKind, Link, LinkOptions};
use testkit::PgNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod control;

const MS: Duration = Duration::from_millis(1);
/// How long anything that should happen may take before a test gives up.
const DEADLINE: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------ helpers

/// An echo server on a free port of 127.0.0.1; it lives as long as the
/// test's runtime.
async fn echo_server() -> SocketAddr {
    tagged_server(None).await
}

/// A server that first writes `tag` (if any), then echoes.
async fn tagged_server(tag: Option<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                if let Some(tag) = tag {
                    let _ = sock.write_all(&[tag]).await;
                }
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn link_to(upstream: SocketAddr) -> Link {
    proxy::start(LinkOptions::new("test", upstream))
        .await
        .expect("start link")
}

async fn connect(link: &Link) -> TcpStream {
    let s = TcpStream::connect(link.addr()).await.expect("connect to link");
    // Best effort: a link that resets at once may already have closed it.
    let _ = s.set_nodelay(true);
    s
}

/// Writes one byte and waits for it to come back; returns the round trip.
async fn round_trip(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    s.write_all(b"x").await.expect("write");
    let mut b = [0u8; 1];
    within("the echo", s.read_exact(&mut b)).await.expect("read echo");
    assert_eq!(&b, b"x");
    t.elapsed()
}

/// Awaits `fut`, failing the test if it takes longer than [`DEADLINE`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Polls `check` every 20 ms until it returns `Some`, up to [`DEADLINE`].
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(20 * MS).await;
    }
}

/// Whether reading `s` gives an error or end of stream (no data) — what a
/// client of a dropped connection sees.
async fn is_dropped(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(
        within("the connection to end", s.read(&mut b)).await,
        Ok(0) | Err(_)
    )
}

/// Whether a new connection to `link` is reset at once: the connect itself
/// fails (the reset beat it) or nothing can be read from it.
async fn refused(link: &Link) -> bool {
    match TcpStream::connect(link.addr()).await {
        Err(_) => true,
        Ok(mut s) => is_dropped(&mut s).await,
    }
}

async fn pg_node() -> PgNode {
    tokio::task::spawn_blocking(PgNode::start)
        .await
        .expect("start postgres")
}

async fn pg_connect(link: &Link) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let url = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=20",
        link.addr().port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn select_int(client: &tokio_postgres::Client, n: i32) -> Result<i32, tokio_postgres::Error> {
    let row = client.query_one(&format!("select {n}"), &[]).await?;
    Ok(row.get(0))
}

/// `len` bytes that are not all alike, so a lost or reordered chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

// -------------------------------------------------------------- forwarding

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_bytes_both_ways_and_counts_them() {
    let link = link_to(echo_server().await).await;
    let mut s = connect(&link).await;
    let data = pattern(300_000);
    let (mut r, mut w) = s.split();
    let mut back = vec![0u8; data.len()];
    let (wrote, read) = tokio::join!(w.write_all(&data), r.read_exact(&mut back));
    wrote.expect("write");
    read.expect("read");
    assert!(back == data, "echoed bytes differ");
    drop(s);

    let stats = eventually("the connection to close", || {
        let st = link.stats();
        (st.connections_active == 0).then_some(st)
    })
    .await;
    assert_eq!(stats.connections_total, 1);
    assert_eq!(stats.bytes_to_upstream, 300_000);
    assert_eq!(stats.bytes_to_client, 300_000);
    assert_eq!(link.upstream(), link.upstream());
}

/// Regression: sockets carry linger 0 while a connection runs (so that an
/// aborted one resets); a clean end must still close with FIN after every
/// byte is sent, however much is still in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_writes_and_closes_is_read_to_the_end_not_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let data = pattern(8 << 20);
    let sent = data.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let _ = sock.write_all(&sent).await;
            });
        }
    });
    let link = link_to(upstream).await;
    for _ in 0..3 {
        let mut s = connect(&link).await;
        // Our FIN first: the link is done with this direction while
        // megabytes are still on their way to us.
        s.shutdown().await.expect("shutdown");
        let mut back = Vec::new();
        within("the whole payload", s.read_to_end(&mut back))
            .await
            .expect("read to a clean end");
        assert!(back == data, "got {} of {} bytes", back.len(), data.len());
    }
    let stats = eventually("the connections to close", || {
        let st = link.stats();
        (st.connections_active == 0).then_some(st)
    })
    .await;
    assert_eq!(
        (stats.connections_total, stats.connections_killed),
        (3, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_work_through_the_link() {
    let pg = pg_node().await;
    let link = link_to(format!("127.0.0.1:{}", pg.port()).parse().unwrap()).await;
    let client = pg_connect(&link).await.expect("connect through the link");
    client
        .batch_execute("create table t (id int primary key, v text); insert into t select g, repeat('v', 100) from generate_series(1, 1000) g")
        .await
        .expect("create and fill");
    let row = client
        .query_one("select count(*), sum(length(v)) from t", &[])
        .await
        .expect("count");
    assert_eq!(row.get::<_, i64>(0), 1000);
    assert_eq!(row.get::<_, i64>(1), 100_000);
    let stats = link.stats();
    assert_eq!(stats.connections_total, 1);
    assert!(
        stats.bytes_to_upstream > 100 && stats.bytes_to_client > 100,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_drops_the_client_and_counts_a_failure() {
    let nothing: SocketAddr = format!("127.0.0.1:{}", testkit::free_port()).parse().unwrap();
    let link = link_to(nothing).await;
    assert!(refused(&link).await, "the client was not dropped");
    eventually("the failure to be counted", || {
        (link.stats().upstream_failures == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_upstream_sends_new_connections_elsewhere_and_keeps_old_ones() {
    let a = tagged_server(Some(b'a')).await;
    let b = tagged_server(Some(b'b')).await;
    let link = link_to(a).await;
    let mut first = connect(&link).await;
    let mut tag = [0u8; 1];
    within("tag a", first.read_exact(&mut tag)).await.expect("read");
    assert_eq!(&tag, b"a");

    link.set_upstream(b);
    assert_eq!(link.upstream(), b);
    let mut second = connect(&link).await;
    within("tag b", second.read_exact(&mut tag)).await.expect("read");
    assert_eq!(&tag, b"b");
    round_trip(&mut first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drops_connections_and_closes_the_listener() {
    let link = link_to(echo_server().await).await;
    let addr = link.addr();
    let mut s = connect(&link).await;
    round_trip(&mut s).await;
    let observer = link.clone();
    within("shutdown", link.shutdown()).await;
    assert!(is_dropped(&mut s).await, "the connection survived shutdown");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener still accepts"
    );
    assert_eq!(observer.stats().connections_active, 0);
}

// ------------------------------------------------------------------ faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_combine_are_listed_and_clear_one_by_one() {
    let link = link_to(echo_server().await).await;
    assert!(link.faults().is_empty());
    let latency = Fault::Latency {
        delay: 5 * MS,
        jitter: MS,
    };
    link.apply(Fault::Latency {
        delay: MS,
        jitter: MS,
    });
    link.apply(latency);
    link.apply(Fault::Bandwidth {
        bytes_per_sec: 1_000_000,
    });
    link.apply(Fault::Stall);
    link.apply(Fault::Reset);
    assert_eq!(
        link.faults(),
        vec![
            latency,
            Fault::Bandwidth {
                bytes_per_sec: 1_000_000
            },
            Fault::Stall
        ],
        "a second latency replaces the first; a reset is over at once"
    );
    link.clear(FaultKind::Stall);
    link.clear(FaultKind::Reset);
    assert_eq!(
        link.faults(),
        vec![
            latency,
            Fault::Bandwidth {
                bytes_per_sec: 1_000_000
            }
        ]
    );
    link.heal();
    assert!(link.faults().is_empty());
    assert_eq!(link.stats().faults_applied, 5);
    assert_eq!(latency.to_string(), "latency 5ms ± 1ms");
    assert_eq!(Fault::Partition.to_string(), "partition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_each_direction_of_an_existing_connection() {
    let link = link_to(echo_server().await).await;
    let mut s = connect(&link).await;
    round_trip(&mut s).await;

    let (delay, jitter) = (40 * MS, 10 * MS);
    link.apply(Fault::Latency { delay, jitter });
    for _ in 0..3 {
        let rtt = round_trip(&mut s).await;
        // Each direction waits at least delay - jitter.
        assert!(
            rtt >= 2 * (delay - jitter),
            "round trip {rtt:?} under latency {delay:?} ± {jitter:?}"
        );
    }

    link.heal();
    assert!(link.faults().is_empty());
    round_trip(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limits_a_bulk_transfer() {
    let link = link_to(echo_server().await).await;
    let rate = 400_000u64;
    link.apply(Fault::Bandwidth { bytes_per_sec: rate });
    let size = 200_000usize;
    let data = pattern(size);

    let started = Instant::now();
    let mut s = connect(&link).await;
    let (mut r, mut w) = s.split();
    let mut back = vec![0u8; size];
    let (wrote, read) = within("the transfer", async {
        tokio::join!(w.write_all(&data), r.read_exact(&mut back))
    })
    .await;
    wrote.expect("write");
    read.expect("read");
    let took = started.elapsed();
    assert!(back == data, "bytes differ");
    let least = Duration::from_secs_f64(size as f64 / rate as f64);
    assert!(
        took >= least,
        "{size} bytes at {rate} B/s took {took:?}, less than {least:?}"
    );

    link.clear(FaultKind::Bandwidth);
    assert!(link.faults().is_empty());
    round_trip(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_switched_mid_transfer_lose_and_reorder_nothing() {
    let link = proxy::start(LinkOptions {
        seed: 7,
        ..LinkOptions::new("order", echo_server().await)
    })
    .await
    .expect("start");
    let mut s = connect(&link).await;
    let data = pattern(2_000_000);
    let (mut r, mut w) = s.split();
    let mut back = vec![0u8; data.len()];
    let writer = async {
        // Small writes, so many chunks pass under each fault.
        for piece in data.chunks(4_000) {
            w.write_all(piece).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let reader = async {
        let mut got = 0;
        let mut step = 0;
        while got < back.len() {
            let n = r.read(&mut back[got..]).await?;
            assert!(n > 0, "stream ended early at {got}");
            got += n;
            // Change the fault set every ~250 kB as the data comes back.
            while got >= (step + 1) * 250_000 {
                step += 1;
                match step % 4 {
                    1 => link.apply(Fault::Latency {
                        delay: 2 * MS,
                        jitter: 2 * MS,
                    }),
                    2 => link.apply(Fault::Bandwidth {
                        bytes_per_sec: 4_000_000,
                    }),
                    3 => link.clear(FaultKind::Latency),
                    _ => link.heal(),
                }
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let (wrote, read) = within("the transfer", async { tokio::join!(writer, reader) }).await;
    wrote.expect("write");
    read.expect("read");
    assert!(back == data, "bytes were lost or reordered");
    assert!(link.stats().faults_applied >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_holds_queries_and_new_connections_until_heal() {
    let pg = pg_node().await;
    let link = link_to(format!("127.0.0.1:{}", pg.port()).parse().unwrap()).await;
    let client = pg_connect(&link).await.expect("connect");
    assert_eq!(select_int(&client, 1).await.expect("query"), 1);

    link.apply(Fault::Stall);
    let before = link.stats();
    let mut query = tokio::spawn(async move { select_int(&client, 2).await });
    let link2 = link.clone();
    let mut newcomer = tokio::spawn(async move {
        let c = pg_connect(&link2).await?;
        select_int(&c, 3).await
    });
    eventually("both connections to be accepted", || {
        (link.stats().connections_active == 2).then_some(())
    })
    .await;
    // A bounded look: neither may finish while the link is stalled.
    let hung = tokio::time::timeout(500 * MS, async {
        tokio::select! { _ = &mut query => {}, _ = &mut newcomer => {} }
    });
    assert!(
        hung.await.is_err(),
        "a query or connection got through a stalled link"
    );
    assert_eq!(link.stats().connections_active, 2, "stalled connections are kept");
    assert_eq!(
        link.stats().bytes_to_client,
        before.bytes_to_client,
        "bytes reached a client while stalled"
    );

    link.heal();
    assert_eq!(
        within("the query", query)
            .await
            .expect("join")
            .expect("query after heal"),
        2
    );
    assert_eq!(
        within("the new connection", newcomer)
            .await
            .expect("join")
            .expect("connect after heal"),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_existing_connections_with_rst_and_new_ones_work() {
    let link = link_to(echo_server().await).await;
    let mut s = connect(&link).await;
    round_trip(&mut s).await;
    link.apply(Fault::Reset);
    let mut b = [0u8; 1];
    let err = within("the reset", s.read(&mut b))
        .await
        .expect_err("a reset connection reads an error");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(link.faults().is_empty(), "a reset is one-shot");
    let mut fresh = connect(&link).await;
    round_trip(&mut fresh).await;
    eventually("the kill to be counted", || {
        (link.stats().connections_killed == 1).then_some(())
    })
    .await;
    round_trip(&mut fresh).await;
    assert_eq!(
        link.stats().connections_killed,
        1,
        "only the old connection was killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_fails_a_postgres_client_and_reconnecting_works() {
    let pg = pg_node().await;
    let link = link_to(format!("127.0.0.1:{}", pg.port()).parse().unwrap()).await;
    let client = pg_connect(&link).await.expect("connect");
    assert_eq!(select_int(&client, 1).await.expect("query"), 1);
    link.apply(Fault::Reset);
    assert!(
        select_int(&client, 2).await.is_err(),
        "a query went through a reset connection"
    );
    let again = pg_connect(&link).await.expect("reconnect");
    assert_eq!(select_int(&again, 3).await.expect("query"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_refuses_and_drops_until_heal() {
    let pg = pg_node().await;
    let link = link_to(format!("127.0.0.1:{}", pg.port()).parse().unwrap()).await;
    let client = pg_connect(&link).await.expect("connect");
    assert_eq!(select_int(&client, 1).await.expect("query"), 1);

    link.apply(Fault::Partition);
    assert!(
        select_int(&client, 2).await.is_err(),
        "a query crossed the partition"
    );
    assert!(
        pg_connect(&link).await.is_err(),
        "a new connection crossed the partition"
    );
    assert!(refused(&link).await, "a raw connection was kept");
    let stats = link.stats();
    assert!(stats.connections_refused >= 2, "{stats:?}");
    assert!(stats.connections_killed >= 1, "{stats:?}");
    assert_eq!(
        link.faults(),
        vec![Fault::Partition],
        "a partition lasts until healed"
    );

    link.heal();
    let again = pg_connect(&link).await.expect("connect after heal");
    assert_eq!(select_int(&again, 3).await.expect("query after heal"), 3);
}
