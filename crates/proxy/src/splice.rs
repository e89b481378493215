//! The no-fault path in the kernel's hands: bytes move socket → pipe →
//! socket with splice(2), so they are never copied into the proxy's memory
//! and back. The pump (pump.rs) still decides every chunk: it moves one
//! chunk into the pipe, checks the fault set, and either lets the pipe out
//! to the other socket or, when a fault came meanwhile, takes the chunk out
//! of the pipe into memory and queues it like any other. So between chunks
//! the pipe is always empty, and a fault never loses or reorders a byte.
//!
//! A pipe costs two file descriptors per direction of a connection; when
//! one cannot be made (descriptors exhausted) the pump copies through a
//! buffer instead. `PRODHOME_PROXY_SPLICE=off` in the environment turns
//! splicing off for the process (to compare, or on a kernel where it
//! misbehaves).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nix::fcntl::{OFlag, SpliceFFlags, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes moved into the pipe at once (a pipe holds 64 KiB by default).
const CHUNK: usize = 64 * 1024;

/// One direction's pipe, and how many bytes it holds.
pub(crate) struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    held: usize,
}

/// Whether splicing is on for this process (read once).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("PRODHOME_PROXY_SPLICE").map_or(true, |v| v != "off"))
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE
}

impl Pipe {
    /// A non-blocking pipe, or None when splicing is off or no pipe can be
    /// made (the caller copies through memory then).
    pub(crate) fn new() -> Option<Pipe> {
        if !enabled() {
            return None;
        }
        let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
        Some(Pipe { r, w, held: 0 })
    }

    /// Moves the next chunk `src` has into the (empty) pipe: its length,
    /// 0 at end of stream.
    pub(crate) async fn fill(&mut self, src: &TcpStream) -> io::Result<usize> {
        debug_assert_eq!(self.held, 0, "a chunk is filled into an empty pipe only");
        loop {
            src.readable().await?;
            // The pipe is empty, so EAGAIN can only mean the socket has
            // nothing: clearing its readiness (as try_io does) is right.
            let moved = src.try_io(Interest::READABLE, || {
                splice(src, None, &self.w, None, CHUNK, flags()).map_err(io::Error::from)
            });
            match moved {
                Ok(n) => {
                    self.held = n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves everything the pipe holds out to `dst`, counting it in `bytes`.
    pub(crate) async fn drain(&mut self, dst: &TcpStream, bytes: &AtomicU64) -> io::Result<()> {
        while self.held > 0 {
            dst.writable().await?;
            let moved = dst.try_io(Interest::WRITABLE, || {
                splice(&self.r, None, dst, None, self.held, flags()).map_err(io::Error::from)
            });
            match moved {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.held -= n;
                    bytes.fetch_add(n as u64, Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes what the pipe holds into memory (a fault came: the chunk is
    /// queued instead of forwarded). The bytes are in the pipe already, so
    /// this never waits.
    pub(crate) fn take(&mut self) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; self.held];
        let mut at = 0;
        while at < out.len() {
            match nix::unistd::read(&self.r, &mut out[at..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => at += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.held = 0;
        Ok(out)
    }
}
