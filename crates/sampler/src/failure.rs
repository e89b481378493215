//! Why a collector could not collect this cycle. Its own module, below both
//! the collectors and the session that produces most failures, so neither
//! imports the other for it.

/// A collector that could not collect this cycle, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) message: String,
    /// The server's SQLSTATE when the server refused: lets a collector
    /// tell "this node has no such view" from a real failure.
    pub(crate) sqlstate: Option<String>,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            sqlstate: None,
        }
    }
}
