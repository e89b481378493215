use std::fmt;

/// What kind of thing went wrong, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Binaries missing or of the wrong version.
    Binaries,
    /// The account servers run as is missing or unusable.
    Account,
    /// initdb, copying a template, or writing configuration failed.
    Init,
    /// Could not connect.
    Connect,
    /// A statement failed.
    Sql,
    /// Something did not happen in time.
    Timeout,
}

/// This crate's error: a message that says what happened and what to do,
/// with the underlying cause kept as the source.
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

    /// The SQLSTATE code when a statement failed on the server.
    pub fn code(&self) -> Option<&str> {
        let source = self.source.as_ref()?;
        let pg = source.downcast_ref::<tokio_postgres::Error>()?;
        pg.code().map(|c| c.code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// The message already carries the cause's text (a server error's SQLSTATE
// and message), so the cause is not chained again: `{:#}` would repeat it.
impl std::error::Error for Error {}

/// Wraps a tokio-postgres error from `what` (e.g. "creating publication books on publisher").
pub(crate) fn sql(what: &str, e: tokio_postgres::Error) -> Error {
    // The server's own message is more useful than tokio-postgres's "db error".
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    Error::with(ErrorKind::Sql, format!("{what}: {detail}"), e)
}
