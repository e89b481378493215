//! hum's error: a message that says what happened and what to do, the kind
//! for callers that branch on it, and the cause kept as the source.

use std::fmt;

/// What kind of thing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The options contradict each other or are out of range.
    Options,
    /// Could not connect to the target (before the run started: once it
    /// runs, lost connections are retried and counted, never returned).
    Connect,
    /// The target is not ready for the workload (tables missing, the
    /// server rejects a statement).
    Setup,
    /// A script file does not parse; the message has file:line:column.
    Script,
    /// The ledger file cannot be opened or written.
    Ledger,
}

/// This crate's error: the message says what happened and what to do.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The SQLSTATE code when the server refused something.
    pub fn code(&self) -> Option<&str> {
        let pg = self.source.as_ref()?.downcast_ref::<tokio_postgres::Error>()?;
        pg.code().map(|c| c.code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// No `source()`: every message already carries what its cause said, and
/// `{:#}` would print it twice. The cause stays inside for [`Error::code`].
impl std::error::Error for Error {}

/// A server error as one line: its message and SQLSTATE, or what broke.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
