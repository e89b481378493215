//! The health endpoint: a few lines of HTTP/1.1 over a TcpListener, enough
//! for a readiness probe (`GET /health`: connected to the database?) and a
//! liveness probe (`GET /live`: is the work loop still turning?).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The loop counts as stuck when it has not reported for this long: longer
/// than the slowest thing it waits for (a 10 s batch or connect, then at
/// most 2 s of backoff).
const STUCK_AFTER: Duration = Duration::from_secs(15);

/// What the probes see, written by the work loop.
#[derive(Debug)]
pub(crate) struct Health {
    started: Instant,
    /// The current database session's number, 0 while there is none. A
    /// session's connection task clears only its own number, so an old
    /// session ending late cannot mark a new one disconnected.
    session: AtomicU64,
    /// Milliseconds after `started` of the loop's last sign of life.
    beat_ms: AtomicU64,
}

impl Health {
    pub(crate) fn new() -> Arc<Health> {
        Arc::new(Health {
            started: Instant::now(),
            session: AtomicU64::new(0),
            beat_ms: AtomicU64::new(0),
        })
    }

    pub(crate) fn connected(&self, session: u64) {
        self.session.store(session, Ordering::SeqCst);
    }

    pub(crate) fn disconnected(&self, session: u64) {
        let _ = self
            .session
            .compare_exchange(session, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub(crate) fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.beat_ms.store(ms, Ordering::SeqCst);
    }

    fn is_connected(&self) -> bool {
        self.session.load(Ordering::SeqCst) != 0
    }

    fn is_alive(&self) -> bool {
        let last = Duration::from_millis(self.beat_ms.load(Ordering::SeqCst));
        self.started.elapsed().saturating_sub(last) < STUCK_AFTER
    }
}

/// Answers probes until the process ends.
pub(crate) async fn serve(listener: TcpListener, health: Arc<Health>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: pause rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let health = health.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &health)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, health: &Health) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let mut words = request.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/health")) if health.is_connected() => ("200 OK", "ok"),
        (Some("GET"), Some("/health")) => ("503 Service Unavailable", "database not connected"),
        (Some("GET"), Some("/live")) if health.is_alive() => ("200 OK", "alive"),
        (Some("GET"), Some("/live")) => ("503 Service Unavailable", "work loop stuck"),
        (Some("GET"), _) => ("404 Not Found", "try /health or /live"),
        _ => ("405 Method Not Allowed", "GET only"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
