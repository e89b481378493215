use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why a link could not start: its address could not be bound. The message
/// names the link and the address; the I/O error is the source.
#[derive(Debug)]
pub struct Error {
    message: String,
    source: io::Error,
}

impl Error {
    pub(crate) fn bind(name: &str, addr: SocketAddr, source: io::Error) -> Error {
        Error {
            message: format!(
                "proxy link {name}: cannot listen on {addr}: {source} \
                 (is another process using the port? choose another one, or port 0 for a free one)"
            ),
            source,
        }
    }

    /// The underlying I/O error's kind (e.g. `AddrInUse`).
    pub fn io_kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// The message already includes the I/O error's text, so it is not chained
// as a source again (`{:#}` would print it twice).
impl std::error::Error for Error {}
