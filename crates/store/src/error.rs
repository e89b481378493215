use std::fmt;

/// The store's error: a message that says what happened, to which file or
/// server, and what to do, with the cause's own text already in it.
#[derive(Debug)]
pub struct Error {
    message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    pub(crate) fn with(message: impl fmt::Display, cause: impl fmt::Display) -> Self {
        Error {
            message: format!("{message}: {cause}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// The message already carries the cause's text, so the cause is not chained
// again: `{:#}` would repeat it.
impl std::error::Error for Error {}

/// Wraps a SQLite error with what was being done to which file.
pub(crate) fn sqlite(what: &str, path: &std::path::Path, e: rusqlite::Error) -> Error {
    Error::with(format!("{what} in the metrics store {}", path.display()), e)
}
