//! SQL scripts as users bring them (plain DDL, Rails' structure.sql,
//! `pg_dump` output with its `COPY ... FROM stdin` data), cut into
//! statements the way psql would cut them, so each can be sent on its own
//! and a failure can name its line.
//!
//! [`split`] reads the whole text into [`Statement`]s, each with its 1-based
//! line and column, its [`Kind`] (rows and sequence positions are
//! [`Kind::Data`]; everything else defines) and, for COPY, the data block.
//! [`created_tables`] lists the tables a script creates. A quote, comment or
//! COPY block that never ends, and a psql meta-command prodhome cannot
//! honour, are an [`Error`] located in the file. Pure: no I/O, no async.

mod classify;
mod error;
mod lexer;
mod split;
#[cfg(test)]
mod tests;

pub use classify::created_tables;
pub use error::Error;
pub use split::split;

use lexer::Tok;

/// Whether a statement writes rows or defines something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, and
    /// `SELECT setval(...)`/`nextval(...)`: what a subscriber must not run
    /// again when it copies the rows by initial sync.
    Data,
    /// Everything else: SET, CREATE, ALTER, COMMENT, GRANT, set_config ...
    Definition,
    /// BEGIN, START TRANSACTION, COMMIT, END: a caller that runs the whole
    /// script in a transaction of its own skips these.
    Transaction,
}

/// One statement of a script.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    /// The text from its first token up to (not including) its `;`.
    pub sql: &'a str,
    /// Where `sql` starts in the file: 1-based, column counted in chars.
    pub line: usize,
    pub column: usize,
    pub kind: Kind,
    /// For `COPY ... FROM stdin`: the data lines (each ending in a newline),
    /// without the closing `\.`.
    pub copy_data: Option<&'a str>,
    head: Vec<Tok<'a>>,
}

impl Statement<'_> {
    /// The statement in one short line for messages: its first line, cut at
    /// about 120 chars.
    pub fn summary(&self) -> String {
        const MAX: usize = 120;
        let first = self.sql.lines().next().unwrap_or("").trim_end();
        let more = first.len() < self.sql.trim_end().len();
        match first.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}…", &first[..cut]),
            None if more => format!("{first} …"),
            None => first.to_string(),
        }
    }
}
