//! The script parser: splits the text into meta-commands (`\` to the end
//! of the line, `\` before a newline continues it) and SQL commands (to a
//! `;` outside quotes, dollar quotes and comments), and checks that every
//! variable is set before it is used.

use std::collections::HashMap;

use super::expr::{self, Located};
use super::{Amount, Command, PREDEFINED, ParseError, Script, locate};

/// Parses a script in pgbench's syntax.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut p = Parser {
        text,
        commands: Vec::new(),
        variables: PREDEFINED.iter().map(|s| s.to_string()).collect(),
        defined: PREDEFINED
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), i))
            .collect(),
        set_later: set_lines(text),
    };
    p.run().map_err(|(offset, message)| {
        let (line, column) = locate(text, offset);
        ParseError {
            line,
            column,
            message,
        }
    })?;
    if !p.commands.iter().any(|c| matches!(c, Command::Sql { .. })) {
        let (line, column) = locate(text, text.len());
        return Err(ParseError {
            line,
            column,
            message: "the script has no SQL command; end each one with `;`".into(),
        });
    }
    Ok(Script {
        commands: p.commands,
        variables: p.variables,
    })
}

struct Parser<'a> {
    text: &'a str,
    commands: Vec<Command>,
    variables: Vec<String>,
    /// Variables set so far (predefined ones included), by name.
    defined: HashMap<String, usize>,
    /// Every `\set NAME` of the script and its line, to tell "used before
    /// it is set" from "never set".
    set_later: HashMap<String, usize>,
}

impl Parser<'_> {
    fn run(&mut self) -> Result<(), Located> {
        let bytes = self.text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_whitespace() {
                i += 1;
            } else if bytes[i..].starts_with(b"--") {
                i = line_end(bytes, i);
            } else if b == b'\\' {
                let end = meta_end(bytes, i);
                self.meta(i, end)?;
                i = end;
            } else {
                let end = sql_end(bytes, i)?;
                self.sql(i, end)?;
                i = end + 1;
            }
        }
        Ok(())
    }

    /// Resolves `:name` at byte `at`.
    fn var(&self, name: &str, at: usize) -> Result<usize, Located> {
        if let Some(&i) = self.defined.get(name) {
            return Ok(i);
        }
        match self.set_later.get(name) {
            Some(line) => Err((
                at,
                format!("variable :{name} is used before it is set (\\set {name} on line {line})"),
            )),
            None => {
                let mut known: Vec<&str> = self.variables.iter().map(String::as_str).collect();
                known.sort_unstable();
                Err((
                    at,
                    format!(
                        "undefined variable :{name}; variables set so far: {}",
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    fn meta(&mut self, start: usize, end: usize) -> Result<(), Located> {
        // Continuations become spaces of the same length: offsets stay true.
        let line = self.text[start..end].replace("\\\n", "  ");
        let word_end = line[1..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(line.len(), |n| n + 1);
        let word = &line[1..word_end];
        let mut rest = word_end;
        let skip_space = |from: usize| from + (line[from..].len() - line[from..].trim_start().len());
        match word {
            "set" => {
                let name_start = skip_space(rest);
                let name_len = line[name_start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(line.len() - name_start);
                let name = &line[name_start..name_start + name_len];
                if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err((
                        start + name_start,
                        "\\set needs a variable name (letters, digits, _) and an expression".into(),
                    ));
                }
                rest = name_start + name_len;
                let expr = expr::parse(&line[rest..], start + rest, &mut |n, at| self.var(n, at))?;
                let var = match self.defined.get(name) {
                    Some(&i) => i,
                    None => {
                        self.variables.push(name.to_string());
                        self.defined.insert(name.to_string(), self.variables.len() - 1);
                        self.variables.len() - 1
                    }
                };
                self.commands.push(Command::Set { var, expr });
            }
            "sleep" => {
                let mut words = Vec::new();
                let mut pos = rest;
                loop {
                    pos = skip_space(pos);
                    if pos >= line.len() {
                        break;
                    }
                    let len = line[pos..].find(char::is_whitespace).unwrap_or(line.len() - pos);
                    words.push((pos, &line[pos..pos + len]));
                    pos += len;
                }
                let Some(&(at, amount)) = words.first() else {
                    return Err((start + rest, "\\sleep needs a duration: \\sleep 10 ms".into()));
                };
                let amount = match amount.strip_prefix(':') {
                    Some(name) => Amount::Var(self.var(name, start + at)?),
                    None => Amount::Literal(amount.parse().map_err(|_| {
                        (
                            start + at,
                            format!("`{amount}` is not a whole number or a :variable"),
                        )
                    })?),
                };
                let unit_us = match words.get(1) {
                    None | Some((_, "s")) => 1_000_000,
                    Some((_, "ms")) => 1_000,
                    Some((_, "us")) => 1,
                    Some(&(at, unit)) => {
                        return Err((start + at, format!("unknown unit `{unit}`; use us, ms or s")));
                    }
                };
                if let Some(&(at, extra)) = words.get(2) {
                    return Err((start + at, format!("unexpected `{extra}` after \\sleep's unit")));
                }
                self.commands.push(Command::Sleep { amount, unit_us });
            }
            _ => {
                return Err((
                    start,
                    format!("unknown meta-command \\{word}; hum's scripts support \\set and \\sleep"),
                ));
            }
        }
        Ok(())
    }

    /// One SQL command, `text[start..end]`: `:name` becomes `$n`.
    fn sql(&mut self, start: usize, end: usize) -> Result<(), Located> {
        let bytes = self.text.as_bytes();
        let mut out = String::with_capacity(end - start);
        let mut params: Vec<usize> = Vec::new();
        let mut i = start;
        let mut copied = start;
        while i < end {
            match bytes[i] {
                b'\'' | b'"' | b'$' | b'-' | b'/' => {
                    // Quotes and comments are copied as they are.
                    i = skip_literal(bytes, i)?.unwrap_or(i + 1);
                }
                b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
                b':' if bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') =>
                {
                    let name_end = (i + 1..end)
                        .find(|&j| !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_'))
                        .unwrap_or(end);
                    let var = self.var(&self.text[i + 1..name_end], i)?;
                    let n = match params.iter().position(|&p| p == var) {
                        Some(n) => n,
                        None => {
                            params.push(var);
                            params.len() - 1
                        }
                    };
                    out.push_str(&self.text[copied..i]);
                    out.push_str(&format!("${}", n + 1));
                    i = name_end;
                    copied = i;
                }
                _ => i += 1,
            }
        }
        out.push_str(&self.text[copied..end]);
        let sql = out.trim();
        if sql.is_empty() {
            return Ok(());
        }
        let lead = self.text[start..end].len() - self.text[start..end].trim_start().len();
        let (line, column) = locate(self.text, start + lead);
        self.commands.push(Command::Sql {
            sql: sql.to_string(),
            params,
            line,
            column,
        });
        Ok(())
    }
}

/// Names set by `\set NAME` anywhere, with their first line.
fn set_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.trim_start().strip_prefix("\\set")
            && rest.starts_with(char::is_whitespace)
            && let Some(name) = rest.split_whitespace().next()
        {
            out.entry(name.to_string()).or_insert(n + 1);
        }
    }
    out
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| from + n)
}

/// The end of a meta-command starting at `from`: its newline, skipping
/// newlines escaped by a backslash.
fn meta_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    loop {
        let end = line_end(bytes, i);
        if end < bytes.len() && end > from && bytes[end - 1] == b'\\' {
            i = end + 1;
        } else {
            return end;
        }
    }
}

/// The `;` that ends the SQL command starting at `from` (or the end).
fn sql_end(bytes: &[u8], from: usize) -> Result<usize, Located> {
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b';' {
            return Ok(i);
        }
        i = skip_literal(bytes, i)?.unwrap_or(i + 1);
    }
    Ok(bytes.len())
}

/// When a quoted string, quoted identifier, dollar-quoted string or
/// comment starts at `i`, the index just after it.
fn skip_literal(bytes: &[u8], i: usize) -> Result<Option<usize>, Located> {
    let find = |from: usize, needle: &[u8]| {
        bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|n| from + n + needle.len())
    };
    match bytes[i] {
        q @ (b'\'' | b'"') => {
            // '' inside a string closes and reopens it: same result.
            let what = if q == b'\'' {
                "quoted string"
            } else {
                "quoted identifier"
            };
            match bytes[i + 1..].iter().position(|&b| b == q) {
                Some(n) => Ok(Some(i + 1 + n + 1)),
                None => Err((i, format!("unterminated {what}"))),
            }
        }
        b'-' if bytes.get(i + 1) == Some(&b'-') => Ok(Some(line_end(bytes, i))),
        b'/' if bytes.get(i + 1) == Some(&b'*') => match find(i + 2, b"*/") {
            Some(end) => Ok(Some(end)),
            None => Err((i, "unterminated /* comment".into())),
        },
        b'$' => {
            // $tag$ … $tag$ (not $1, a parameter).
            let tag_len = bytes[i + 1..]
                .iter()
                .position(|&b| !(b.is_ascii_alphabetic() || b == b'_'))
                .unwrap_or(bytes.len() - i - 1);
            if bytes.get(i + 1 + tag_len) != Some(&b'$') {
                return Ok(None);
            }
            let tag = &bytes[i..i + tag_len + 2];
            match find(i + tag.len(), tag) {
                Some(end) => Ok(Some(end)),
                None => Err((i, "unterminated dollar-quoted string".into())),
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::expr::{Expr, Func};

    fn err(text: &str) -> (usize, usize, String) {
        let e = parse(text).unwrap_err();
        (e.line, e.column, e.message)
    }

    #[test]
    fn tpcb_like_script() {
        let s = parse(
            "-- pgbench's builtin, abridged\n\
             \\set aid random(1, 100000 * :scale)\n\
             \\set delta random_gaussian(-5000, 5000, 2.5)\n\
             BEGIN;\n\
             UPDATE pgbench_accounts\n   SET abalance = abalance + :delta WHERE aid = :aid;\n\
             SELECT abalance::text, ':aid' FROM pgbench_accounts WHERE aid = :aid;\n\
             \\sleep 10 ms\n\
             END;\n",
        )
        .unwrap();
        assert_eq!(s.statements(), 4);
        let sql = s.sql();
        assert_eq!(
            sql[1],
            (
                "UPDATE pgbench_accounts\n   SET abalance = abalance + $1 WHERE aid = $2".to_string(),
                vec!["delta".to_string(), "aid".to_string()]
            )
        );
        // `::` is a cast and a quoted ':aid' stays text.
        assert_eq!(
            sql[2],
            (
                "SELECT abalance::text, ':aid' FROM pgbench_accounts WHERE aid = $1".to_string(),
                vec!["aid".to_string()]
            )
        );
        let Command::Set { var, expr } = &s.commands[0] else {
            panic!()
        };
        assert_eq!(s.variables[*var], "aid");
        let Expr::Call(Func::Random, args) = expr else {
            panic!("{expr:?}")
        };
        assert_eq!(args.len(), 2);
        assert!(matches!(
            &s.commands[1],
            Command::Set {
                expr: Expr::Call(Func::Gaussian, _),
                ..
            }
        ));
        assert!(matches!(
            s.commands[5],
            Command::Sleep {
                amount: Amount::Literal(10),
                unit_us: 1000
            }
        ));
        let Command::Sql { line, column, .. } = &s.commands[3] else {
            panic!()
        };
        assert_eq!((*line, *column), (5, 1));
    }

    #[test]
    fn sleep_forms() {
        let s = parse("\\set t random(1, 3)\n\\sleep :t\n\\sleep 5 us\nselect 1").unwrap();
        assert!(matches!(
            s.commands[1],
            Command::Sleep {
                amount: Amount::Var(_),
                unit_us: 1_000_000
            }
        ));
        assert!(matches!(
            s.commands[2],
            Command::Sleep {
                amount: Amount::Literal(5),
                unit_us: 1
            }
        ));
        assert_eq!(s.sql()[0].0, "select 1");
    }

    #[test]
    fn continuation_lines_and_dollar_quotes() {
        let s = parse("\\set x 1 + \\\n  2\nselect $$a;b$$, :x; select $1;").unwrap();
        assert_eq!(s.sql()[0].0, "select $$a;b$$, $1");
        assert_eq!(s.sql()[1].0, "select $1");
    }

    #[test]
    fn mistakes_are_located() {
        assert_eq!(
            err("select 1;\n\\set aid random(1, 10\n"),
            (2, 22, "expected `,` or `)`".to_string())
        );
        assert_eq!(
            err("\\set a 1\nselect :b;"),
            (
                2,
                8,
                "undefined variable :b; variables set so far: a, client_id, scale".to_string()
            )
        );
        assert_eq!(
            err("select :n;\n\\set n 1"),
            (
                1,
                8,
                "variable :n is used before it is set (\\set n on line 2)".to_string()
            )
        );
        assert_eq!(err("\\sleep 10 hours\nselect 1;").0, 1);
        assert_eq!(err("\\sleep 10 hours\nselect 1;").1, 11);
        assert_eq!(err("select 1;\n  \\gset x").1, 3);
        assert!(
            err("select 1;\n  \\gset x")
                .2
                .contains("unknown meta-command \\gset")
        );
        assert_eq!(
            err("select 'oops;\n"),
            (1, 8, "unterminated quoted string".to_string())
        );
        assert_eq!(err("\\set 1x 2\nselect 1;").1, 6);
        assert_eq!(err("\\set a fancy(1)\nselect 1;").1, 8);
        assert_eq!(
            err("-- nothing\n\\set a 1\n").2,
            "the script has no SQL command; end each one with `;`"
        );
    }
}
