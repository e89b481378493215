//! Custom scripts in pgbench's syntax: [`parse`] turns the text into
//! commands (every mistake located by line and column), `expr` evaluates
//! `\set` expressions with the client's seeded generator.
//!
//! Supported: SQL commands ending in `;` (several per transaction, any
//! number of lines, quotes and comments understood), `:name` substitution
//! in SQL (sent as a parameter of a prepared statement, text format, so the
//! server infers its type), `\set name expression` with integers, doubles,
//! `+ - * / %`, parentheses and the functions `random(lb, ub)`,
//! `random_gaussian(lb, ub, parameter)`, `random_exponential(lb, ub,
//! parameter)`, `abs`, `least`, `greatest`, `int`, `double`, `sqrt`, `pi`,
//! `mod`, and `\sleep n [us | ms | s]` with a number or a variable.
//! Predefined variables: `:scale` and `:client_id`, as in pgbench.
//!
//! One run of the script is one transaction. Its SQL commands are sent
//! pipelined, up to each `\sleep`; `\set` needs no server, so it does not
//! interrupt the pipeline. Inside `BEGIN … END` a failed statement aborts
//! the rest as usual; without it, the statements after a failed one still
//! run (pgbench would stop the script there).

pub(crate) mod expr;
mod parse;

pub use parse::parse;

use std::fmt;

/// A parsed script.
#[derive(Debug, Clone)]
pub struct Script {
    pub(crate) commands: Vec<Command>,
    /// Variable names by index; the first two are `scale` and `client_id`.
    pub(crate) variables: Vec<String>,
}

impl Script {
    /// The number of SQL commands.
    pub fn statements(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| matches!(c, Command::Sql { .. }))
            .count()
    }

    /// The SQL of each command as sent to the server, `:name` replaced by
    /// `$n`, with the variables bound to `$1`, `$2`, … in order.
    pub fn sql(&self) -> Vec<(String, Vec<String>)> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::Sql { sql, params, .. } => Some((
                    sql.clone(),
                    params.iter().map(|&i| self.variables[i].clone()).collect(),
                )),
                _ => None,
            })
            .collect()
    }
}

pub(crate) const SCALE: usize = 0;
pub(crate) const CLIENT_ID: usize = 1;
pub(crate) const PREDEFINED: [&str; 2] = ["scale", "client_id"];

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Set {
        var: usize,
        expr: expr::Expr,
    },
    Sleep {
        amount: Amount,
        unit_us: u64,
    },
    Sql {
        sql: String,
        /// The variable bound to `$1`, `$2`, ….
        params: Vec<usize>,
        line: usize,
        column: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Amount {
    Literal(i64),
    Var(usize),
}

/// A mistake in a script, at a line and column (both from 1).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Line and column (from 1, columns in characters) of byte `offset`.
pub(crate) fn locate(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
