//! The fault-aware copy loop: one direction of one connection.
//!
//! With no fault in force it reads a chunk and writes it straight out, the
//! same work `tokio::io::copy_bidirectional` does (one copy through a
//! userspace buffer), and waits on nothing but the two sockets. That
//! function is not used because it cannot be stopped and resumed: switching
//! to the faulty path would lose the bytes in its buffers. Here a fault
//! applied mid-connection is seen when the next chunk arrives and applies to
//! it, without losing or reordering a byte; a kill does not wait for a
//! chunk: the accept loop aborts the connection's task.
//!
//! With faults, chunks go through a FIFO queue stamped with the time each may
//! leave (latency), and leave only as fast as a token bucket allows
//! (bandwidth); reading goes on while chunks wait, up to [`MAX_QUEUED`] bytes,
//! so latency does not also throttle throughput. A stall stops both reading
//! and writing; whatever was queued leaves after the heal.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fault::{Direction, State, jittered_delay};

/// Bytes read at once. 16 KiB moved a bulk COPY faster than 64 KiB in
/// bench/proxy.sh (BENCHMARKS.md); a Postgres message stream rarely has
/// more than that waiting at once.
const CHUNK: usize = 16 * 1024;
/// Bytes held per direction while they wait out a latency or bandwidth
/// fault; when full, reading stops and TCP pushes back on the sender.
const MAX_QUEUED: usize = 4 * 1024 * 1024;

/// Why a direction stopped other than by a clean end of stream.
#[derive(Debug)]
pub(crate) enum End {
    /// A reset, a partition, or the link shutting down.
    Killed,
    /// A socket failed (e.g. the peer reset it).
    Failed,
}

/// What one direction needs to know besides its two sockets.
pub(crate) struct Ctx<'a> {
    pub(crate) faults: watch::Receiver<State>,
    /// The reset epoch the connection was born in.
    pub(crate) epoch: u64,
    pub(crate) seed: u64,
    pub(crate) conn: u64,
    pub(crate) dir: Direction,
    /// Where forwarded bytes are counted.
    pub(crate) bytes: &'a AtomicU64,
}

struct Chunk {
    data: Vec<u8>,
    sent: usize,
    due: Instant,
}

/// Copies `src` to `dst` until `src` ends (then shuts `dst`'s write side and
/// returns `Ok`), either side fails, or the fault set says to die.
pub(crate) async fn pump<R, W>(src: &mut R, dst: &mut W, mut ctx: Ctx<'_>) -> Result<(), End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut state = ctx.faults.borrow_and_update().clone();
    if state.kills(ctx.epoch) {
        return Err(End::Killed);
    }
    let mut bucket = state.bandwidth.map(Bucket::new);
    let mut buf = vec![0u8; CHUNK];
    let mut queue = Queue::default();
    let mut eof = false;

    loop {
        if eof && queue.is_empty() {
            return dst.shutdown().await.map_err(|_| End::Failed);
        }

        if state.is_clean() && queue.is_empty() {
            // Straight through: read, then write the same buffer out, and
            // nothing else. The fault channel is not waited on here: a kill
            // (reset, partition, shutdown) aborts the connection's task from
            // the accept loop (link.rs), and any other fault is seen with one
            // atomic load (`sync`) when the next chunk arrives, before it is
            // written. So a hop costs a read, a write and the socket's own
            // wakeup, as in `tokio::io::copy`.
            let n = src.read(&mut buf).await.map_err(|_| End::Failed)?;
            if n == 0 {
                eof = true;
                continue;
            }
            // A fault applied before this chunk arrived applies to it.
            sync(&mut ctx, &mut state, &mut bucket)?;
            if !state.is_clean() {
                queue.push(&buf[..n], &state, &ctx);
                continue;
            }
            dst.write_all(&buf[..n]).await.map_err(|_| End::Failed)?;
            ctx.bytes.fetch_add(n as u64, Relaxed);
            continue;
        }

        // Faulty path: when may the head of the queue leave, and how much of it?
        let now = Instant::now();
        let (write_now, limit, sleep_until) = head_window(&state, &queue, bucket.as_mut(), now);
        let can_read = !state.stall && !eof && queue.bytes < MAX_QUEUED;
        let head = queue
            .chunks
            .front()
            .map(|h| &h.data[h.sent..h.sent + limit])
            .unwrap_or(&[]);

        tokio::select! {
            biased;
            r = ctx.faults.changed() => refresh(r, &mut ctx, &mut state, &mut bucket)?,
            r = dst.write(head), if write_now && limit > 0 => {
                let n = written(r, ctx.bytes)?;
                if let Some(b) = bucket.as_mut() {
                    b.take(n);
                }
                queue.sent(n);
            }
            () = tokio::time::sleep_until(sleep_until.unwrap_or(now)), if sleep_until.is_some() => {}
            r = src.read(&mut buf), if can_read => {
                let n = r.map_err(|_| End::Failed)?;
                if n == 0 {
                    eof = true;
                } else {
                    sync(&mut ctx, &mut state, &mut bucket)?;
                    queue.push(&buf[..n], &state, &ctx);
                }
            }
        }
    }
}

/// When the head of the queue may leave and how much of it: whether it
/// may leave now, how many bytes, and otherwise when to wake for it.
fn head_window(
    state: &State,
    queue: &Queue,
    mut bucket: Option<&mut Bucket>,
    now: Instant,
) -> (bool, usize, Option<Instant>) {
    let leave_at = match (state.stall, queue.chunks.front()) {
        (false, Some(head)) => {
            let left = head.data.len() - head.sent;
            match bucket.as_mut() {
                Some(b) => b.ready_at(now, left).map(|t| t.max(head.due)),
                None => Some(head.due),
            }
        }
        _ => None,
    };
    let write_now = leave_at.is_some_and(|t| t <= now);
    let limit = match (write_now, queue.chunks.front(), bucket) {
        (true, Some(head), Some(b)) => b.available(now).min(head.data.len() - head.sent),
        (true, Some(head), None) => head.data.len() - head.sent,
        _ => 0,
    };
    (write_now, limit, leave_at.filter(|_| !write_now))
}

/// Chunks waiting to leave, oldest first.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    /// Bytes in `chunks` not yet written.
    bytes: usize,
    /// Chunks queued so far: numbers each chunk for its jitter.
    count: u64,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Queues a copy of `data`, due after the latency in force (if any).
    fn push(&mut self, data: &[u8], state: &State, ctx: &Ctx<'_>) {
        let delay = match state.latency {
            Some((delay, jitter)) => jittered_delay(delay, jitter, ctx.seed, ctx.conn, ctx.dir, self.count),
            None => Duration::ZERO,
        };
        self.count += 1;
        self.bytes += data.len();
        self.chunks.push_back(Chunk {
            data: data.to_vec(),
            sent: 0,
            due: Instant::now() + delay,
        });
    }

    /// Records that `n` bytes of the head were written.
    fn sent(&mut self, n: usize) {
        self.bytes -= n;
        if let Some(head) = self.chunks.front_mut() {
            head.sent += n;
            if head.sent == head.data.len() {
                self.chunks.pop_front();
            }
        }
    }
}

/// Takes in a fault set that changed since we last looked, without waiting.
fn sync(ctx: &mut Ctx<'_>, state: &mut State, bucket: &mut Option<Bucket>) -> Result<(), End> {
    match ctx.faults.has_changed() {
        Ok(false) => Ok(()),
        Ok(true) => refresh(Ok(()), ctx, state, bucket),
        Err(_) => Err(End::Killed),
    }
}

/// Takes in a new fault set, or says the connection must die.
fn refresh(
    changed: Result<(), watch::error::RecvError>,
    ctx: &mut Ctx<'_>,
    state: &mut State,
    bucket: &mut Option<Bucket>,
) -> Result<(), End> {
    // The sender lives in the link: gone means every handle was dropped.
    if changed.is_err() {
        return Err(End::Killed);
    }
    let new = ctx.faults.borrow_and_update().clone();
    if new.kills(ctx.epoch) {
        return Err(End::Killed);
    }
    if new.bandwidth != state.bandwidth {
        *bucket = new.bandwidth.map(Bucket::new);
    }
    *state = new;
    Ok(())
}

fn written(r: io::Result<usize>, bytes: &AtomicU64) -> Result<usize, End> {
    match r {
        Ok(0) => Err(End::Failed),
        Ok(n) => {
            bytes.fetch_add(n as u64, Relaxed);
            Ok(n)
        }
        Err(_) => Err(End::Failed),
    }
}

/// A token bucket that starts empty, so `n` bytes never leave in less than
/// `n / rate` seconds, and holds at most 20 ms worth of tokens (at least one
/// byte), so an idle connection cannot save up a burst.
struct Bucket {
    rate: u64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        Bucket {
            rate,
            capacity: (rate as f64 / 50.0).max(1.0),
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.capacity);
        self.last = now;
    }

    /// Whole bytes that may leave now.
    fn available(&mut self, now: Instant) -> usize {
        self.refill(now);
        self.tokens as usize
    }

    /// When `wanted` bytes (or a full bucket, if less) may leave; never at
    /// rate 0.
    fn ready_at(&mut self, now: Instant, wanted: usize) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        self.refill(now);
        let want = (wanted as f64).min(self.capacity).max(1.0);
        if self.tokens >= want {
            return Some(now);
        }
        let wait = (want - self.tokens) / self.rate as f64;
        // A microsecond more, so float rounding never wakes us a hair early.
        Some(now + Duration::from_secs_f64(wait) + Duration::from_micros(1))
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_starts_empty_and_fills_at_its_rate_up_to_its_capacity() {
        let mut b = Bucket::new(1000);
        let t0 = b.last;
        assert_eq!(b.available(t0), 0);
        assert_eq!(b.available(t0 + Duration::from_millis(10)), 10);
        // Capacity is 20 ms worth: 20 bytes at 1000 B/s.
        assert_eq!(b.available(t0 + Duration::from_secs(5)), 20);
        b.take(20);
        let t1 = t0 + Duration::from_secs(5);
        let at = b.ready_at(t1, 5).expect("rate > 0");
        assert!(at >= t1 + Duration::from_millis(5), "{:?}", at - t1);
    }

    #[test]
    fn bucket_at_rate_zero_never_lets_anything_through() {
        let mut b = Bucket::new(0);
        let t0 = b.last;
        assert_eq!(b.ready_at(t0 + Duration::from_secs(60), 1), None);
    }
}
