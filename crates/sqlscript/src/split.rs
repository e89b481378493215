//! Cutting a script into statements where psql would: at a `;` outside
//! quotes, comments, parentheses and `BEGIN ATOMIC ... END` bodies, with
//! meta-commands taken out and `COPY ... FROM stdin` data carried along.

use crate::classify;
use crate::error::Error;
use crate::lexer::{Lexer, Tok, Token};
use crate::{Kind, Statement};

/// How many leading tokens a statement keeps for classifying it.
const HEAD: usize = 24;

/// Splits `text` into its statements, in file order.
pub fn split(text: &str) -> Result<Vec<Statement<'_>>, Error> {
    let mut lexer = Lexer::new(text);
    let mut statements = Vec::new();
    let mut current = Builder::default();
    while let Some(token) = lexer.next_token() {
        let token = token?;
        match &token.tok {
            Tok::Meta(command) => meta(command, &token)?,
            Tok::Punct(';') if current.at_top() => {
                if let Some(mut statement) = current.finish(text) {
                    if statement.copy_from_stdin {
                        statement.copy_data = Some(lexer.copy_block(statement.line, statement.column)?);
                    }
                    statements.push(statement.into());
                }
                current = Builder::default();
            }
            _ => current.push(token),
        }
    }
    // psql runs what is left at the end of the file even without its `;`.
    if let Some(statement) = current.finish(text) {
        if statement.copy_from_stdin {
            return Err(Error::new(
                statement.line,
                statement.column,
                "COPY ... FROM stdin without its `;` and data block",
                "end the COPY statement with ; and follow it with the data lines and a line \\.",
            ));
        }
        statements.push(statement.into());
    }
    Ok(statements)
}

/// psql meta-commands: the harmless ones are skipped, the ones whose effect
/// prodhome cannot reproduce refuse the file rather than be ignored.
fn meta(command: &str, at: &Token<'_>) -> Result<(), Error> {
    let name = command.split_whitespace().next().unwrap_or("");
    // \restrict and \unrestrict guard pg_dump output against injected
    // meta-commands (since PostgreSQL 17.6/15.14); the others only print or
    // set psql variables.
    const HARMLESS: &[&str] = &[
        "restrict",
        "unrestrict",
        "set",
        "unset",
        "echo",
        "qecho",
        "warn",
        "timing",
        "pset",
        "encoding",
        "errverbose",
    ];
    if HARMLESS.contains(&name) {
        return Ok(());
    }
    let help = match name {
        "connect" | "c" => {
            "prodhome applies the file to the database `postgres` of each node and cannot switch databases: \
             dump one database without --create (-C), or remove the \\connect line"
        }
        "i" | "ir" | "include" | "include_relative" => {
            "prodhome reads only this file: paste the included file's text in its place"
        }
        "copy" => {
            "\\copy reads a client-side file: use COPY ... FROM stdin; with the rows in the file, ending in \\."
        }
        "." => "a \\. line ends the data of a COPY ... FROM stdin; there is no COPY before it",
        _ => "remove the line: prodhome runs the SQL itself, not through psql",
    };
    Err(Error::new(
        at.line,
        at.column,
        format!("psql meta-command \\{name} cannot be honoured"),
        help,
    ))
}

/// What is known about the statement being read.
#[derive(Default)]
struct Builder<'a> {
    start: Option<(usize, usize, usize)>,
    end: usize,
    parens: usize,
    /// `BEGIN ATOMIC ... END` nesting in a function body (psql's heuristic).
    begins: usize,
    /// First letters of the leading words, as psql tracks them to spot
    /// CREATE [OR REPLACE] FUNCTION|PROCEDURE.
    lead: [u8; 4],
    words: usize,
    head: Vec<Tok<'a>>,
    after_from: bool,
    copy_from_stdin: bool,
    top_dml: bool,
}

/// A finished statement before it is classified.
struct Pending<'a> {
    sql: &'a str,
    line: usize,
    column: usize,
    head: Vec<Tok<'a>>,
    copy_from_stdin: bool,
    copy_data: Option<&'a str>,
    top_dml: bool,
}

impl<'a> Builder<'a> {
    fn at_top(&self) -> bool {
        self.parens == 0 && self.begins == 0
    }

    fn push(&mut self, token: Token<'a>) {
        if self.start.is_none() {
            self.start = Some((token.start, token.line, token.column));
        }
        self.end = token.end;
        match &token.tok {
            Tok::Punct('(') => self.parens += 1,
            Tok::Punct(')') => self.parens = self.parens.saturating_sub(1),
            Tok::Word(word) => self.word(word),
            _ => {}
        }
        if !matches!(token.tok, Tok::Word(_)) {
            self.after_from = false;
        }
        if self.head.len() < HEAD {
            self.head.push(token.tok);
        }
    }

    fn word(&mut self, word: &str) {
        let lower = word.to_ascii_lowercase();
        if self.words < self.lead.len()
            && matches!(
                lower.as_str(),
                "create" | "function" | "procedure" | "or" | "replace"
            )
        {
            self.lead[self.words] = lower.as_bytes()[0];
        }
        self.words += 1;
        let l = self.lead;
        let routine = l[0] == b'c'
            && (l[1] == b'f'
                || l[1] == b'p'
                || (l[1] == b'o' && l[2] == b'r' && (l[3] == b'f' || l[3] == b'p')));
        if routine && self.parens == 0 {
            match lower.as_str() {
                "begin" => self.begins += 1,
                // CASE also ends with END; it matters only inside a BEGIN.
                "case" if self.begins > 0 => self.begins += 1,
                "end" => self.begins = self.begins.saturating_sub(1),
                _ => {}
            }
        }
        let first_is = |w: &str| matches!(self.head.first(), Some(Tok::Word(f)) if f.eq_ignore_ascii_case(w));
        if self.parens == 0 {
            if self.after_from && lower == "stdin" && first_is("copy") {
                self.copy_from_stdin = true;
            }
            if matches!(lower.as_str(), "insert" | "update" | "delete" | "merge") {
                self.top_dml = true;
            }
        }
        self.after_from = self.parens == 0 && lower == "from";
    }

    fn finish(&mut self, text: &'a str) -> Option<Pending<'a>> {
        let (start, line, column) = self.start?;
        Some(Pending {
            sql: &text[start..self.end],
            line,
            column,
            head: std::mem::take(&mut self.head),
            copy_from_stdin: self.copy_from_stdin,
            copy_data: None,
            top_dml: self.top_dml,
        })
    }
}

impl<'a> From<Pending<'a>> for Statement<'a> {
    fn from(p: Pending<'a>) -> Self {
        let kind = classify::kind(&p.head, p.top_dml);
        Statement {
            sql: p.sql,
            line: p.line,
            column: p.column,
            kind: if p.copy_data.is_some() { Kind::Data } else { kind },
            copy_data: p.copy_data,
            head: p.head,
        }
    }
}
