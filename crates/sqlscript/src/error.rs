use std::fmt;

/// A script that cannot be split: where (1-based line and column, columns
/// counted in chars), what is wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    line: usize,
    column: usize,
    message: String,
    help: String,
}

impl Error {
    pub(crate) fn new(
        line: usize,
        column: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Error {
            line,
            column,
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn line(&self) -> usize {
        self.line
    }

    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to do about it.
    pub fn help(&self) -> &str {
        &self.help
    }
}

/// `LINE:COLUMN: message`; callers put the file's path in front.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for Error {}
