//! Tokens of a SQL script the way psql sees them: enough to know where a
//! statement ends (quotes, dollar quotes, comments and meta-commands hide
//! semicolons) and what a statement starts with. Comments and whitespace are
//! skipped; nothing here understands SQL grammar.

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// An unquoted identifier or keyword, as written.
    Word(&'a str),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// A string constant ('', E'', $$ $$), its contents roughly unescaped.
    Str(String),
    /// A psql meta-command: the text after the backslash up to the line's end.
    Meta(&'a str),
    /// Any other character (operators, punctuation, digits).
    Punct(char),
}

#[derive(Debug, Clone)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    /// Byte offsets into the script.
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// Advances to byte offset `to` (a char boundary at or after `pos`).
    fn bump_to(&mut self, to: usize) {
        while self.pos < to && self.bump().is_some() {}
    }

    /// The next token, `None` at the end, or an error for a quote or
    /// comment that never ends.
    pub(crate) fn next_token(&mut self) -> Option<Result<Token<'a>, Error>> {
        if let Err(e) = self.skip_blanks() {
            return Some(Err(e));
        }
        let (start, line, column) = (self.pos, self.line, self.column);
        let c = self.peek()?;
        let tok = match self.token(c, line, column) {
            Ok(tok) => tok,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Token {
            tok,
            start,
            end: self.pos,
            line,
            column,
        }))
    }

    fn token(&mut self, c: char, line: usize, column: usize) -> Result<Tok<'a>, Error> {
        let tok = match c {
            '\'' => Tok::Str(self.quoted('\'', false, line, column)?),
            '"' => Tok::Quoted(self.quoted('"', false, line, column)?),
            '\\' => {
                self.bump();
                let start = self.pos;
                let end = self.text[start..]
                    .find('\n')
                    .map_or(self.text.len(), |i| start + i);
                self.bump_to(end);
                Tok::Meta(&self.text[start..end])
            }
            '$' => match self.dollar_tag() {
                Some(tag) => Tok::Str(self.dollar_quoted(tag, line, column)?),
                None => {
                    self.bump();
                    Tok::Punct('$')
                }
            },
            c if is_ident_start(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_ident_char) {
                    self.bump();
                }
                let word = &self.text[start..self.pos];
                // E'...' is a string with backslash escapes, not a word.
                if word.eq_ignore_ascii_case("e") && self.peek() == Some('\'') {
                    Tok::Str(self.quoted('\'', true, line, column)?)
                } else {
                    Tok::Word(word)
                }
            }
            c => {
                self.bump();
                Tok::Punct(c)
            }
        };
        Ok(tok)
    }

    fn skip_blanks(&mut self) -> Result<(), Error> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('-'), Some('-')) => {
                    let end = self.text[self.pos..]
                        .find('\n')
                        .map_or(self.text.len(), |i| self.pos + i);
                    self.bump_to(end);
                }
                (Some('/'), Some('*')) => self.block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    /// Block comments nest in Postgres, unlike in C.
    fn block_comment(&mut self) -> Result<(), Error> {
        let (line, column) = (self.line, self.column);
        let mut depth = 0usize;
        loop {
            match (self.peek(), self.peek2()) {
                (Some('/'), Some('*')) => {
                    depth += 1;
                    self.bump();
                    self.bump();
                }
                (Some('*'), Some('/')) => {
                    depth -= 1;
                    self.bump();
                    self.bump();
                    if depth == 0 {
                        return Ok(());
                    }
                }
                (Some(_), _) => {
                    self.bump();
                }
                (None, _) => {
                    return Err(Error::new(
                        line,
                        column,
                        "unterminated /* comment: the file ends before its */",
                        "close the comment with */ (comments nest: each /* needs its own */)",
                    ));
                }
            }
        }
    }

    /// A '...' string (doubled quote inside), E'...' (also backslash
    /// escapes) or "..." identifier. The cursor is on the opening quote.
    fn quoted(&mut self, quote: char, escapes: bool, line: usize, column: usize) -> Result<String, Error> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('\\') if escapes => {
                    if let Some(c) = self.bump() {
                        out.push(c);
                    }
                }
                Some(c) if c == quote => {
                    if self.peek() == Some(quote) {
                        self.bump();
                        out.push(quote);
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => out.push(c),
                None => return Err(unterminated(quote, escapes, line, column)),
            }
        }
    }

    /// `$$` or `$tag$` at the cursor, or `None` (a parameter like `$1`).
    fn dollar_tag(&self) -> Option<&'a str> {
        let rest = &self.text[self.pos + 1..];
        let mut chars = rest.char_indices();
        match chars.next()? {
            (_, '$') => return Some(&self.text[self.pos..self.pos + 2]),
            (_, c) if is_tag_start(c) => {}
            _ => return None,
        }
        for (i, c) in chars {
            if c == '$' {
                return Some(&self.text[self.pos..self.pos + 1 + i + 1]);
            }
            if !is_tag_char(c) {
                return None;
            }
        }
        None
    }

    fn dollar_quoted(&mut self, tag: &str, line: usize, column: usize) -> Result<String, Error> {
        let body_start = self.pos + tag.len();
        let Some(len) = self.text[body_start..].find(tag) else {
            return Err(Error::new(
                line,
                column,
                format!("unterminated dollar-quoted string: the file ends before its closing {tag}"),
                format!("end the body with {tag}, spelled exactly as it opened"),
            ));
        };
        let body = self.text[body_start..body_start + len].to_string();
        self.bump_to(body_start + len + tag.len());
        Ok(body)
    }

    /// The data block of a `COPY ... FROM stdin` whose `;` was just read:
    /// the lines after the current one, up to a line `\.` (not included).
    /// `line`/`column` locate the COPY for the error when the block never ends.
    pub(crate) fn copy_block(&mut self, line: usize, column: usize) -> Result<&'a str, Error> {
        let missing = || {
            Error::new(
                line,
                column,
                "COPY ... FROM stdin: the file ends before the data's end line `\\.`",
                "end the data block with a line holding only \\.",
            )
        };
        let rest = &self.text[self.pos..];
        let Some(newline) = rest.find('\n') else {
            return Err(missing());
        };
        let start = self.pos + newline + 1;
        let mut at = start;
        loop {
            let line_end = self.text[at..].find('\n').map(|i| at + i);
            let text = &self.text[at..line_end.unwrap_or(self.text.len())];
            if text.trim_end_matches('\r') == "\\." {
                self.bump_to(line_end.unwrap_or(self.text.len()));
                return Ok(&self.text[start..at]);
            }
            match line_end {
                Some(end) => at = end + 1,
                None => return Err(missing()),
            }
        }
    }
}

fn unterminated(quote: char, escapes: bool, line: usize, column: usize) -> Error {
    let (what, help) = match (quote, escapes) {
        ('"', _) => (
            "quoted identifier",
            "close the name with \" (a \" inside a name is written \"\")",
        ),
        (_, true) => (
            "E'' string",
            "close the string with ' (inside E'' a \\' does not end it; write '' or \\\\ for a backslash)",
        ),
        _ => (
            "quoted string",
            "close the string with ' (a ' inside a string is written '')",
        ),
    };
    Error::new(
        line,
        column,
        format!("unterminated {what}: the file ends before its closing {quote}"),
        help,
    )
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

fn is_tag_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_tag_char(c: char) -> bool {
    is_tag_start(c) || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok<'_>> {
        let mut lexer = Lexer::new(text);
        std::iter::from_fn(|| lexer.next_token())
            .map(|t| t.unwrap().tok)
            .collect()
    }

    fn error(text: &str) -> Error {
        let mut lexer = Lexer::new(text);
        std::iter::from_fn(|| lexer.next_token())
            .find_map(|t| t.err())
            .expect("an error")
    }

    #[test]
    fn quotes_and_comments_hide_semicolons() {
        let got = toks("a 'x;''y' \"b;\"\"c\" -- ;\n /* ; /* ; */ ; */ $$;$$ $f$ $$ ; $f$ E'\\';' ;");
        assert_eq!(
            got,
            vec![
                Tok::Word("a"),
                Tok::Str("x;'y".into()),
                Tok::Quoted("b;\"c".into()),
                Tok::Str(";".into()),
                Tok::Str(" $$ ; ".into()),
                Tok::Str("';".into()),
                Tok::Punct(';'),
            ]
        );
    }

    #[test]
    fn parameters_and_identifiers_with_dollars_are_not_quotes() {
        assert_eq!(
            toks("a$b $1"),
            vec![Tok::Word("a$b"), Tok::Punct('$'), Tok::Punct('1')]
        );
    }

    #[test]
    fn plain_strings_keep_backslashes() {
        assert_eq!(toks(r"'a\' b"), vec![Tok::Str(r"a\".into()), Tok::Word("b")]);
    }

    #[test]
    fn meta_commands_run_to_the_end_of_the_line() {
        assert_eq!(
            toks("\\connect x\nselect"),
            vec![Tok::Meta("connect x"), Tok::Word("select")]
        );
    }

    #[test]
    fn unterminated_things_are_located_where_they_open() {
        let e = error("select\n  'abc");
        assert_eq!((e.line(), e.column()), (2, 3));
        assert!(e.message().contains("quoted string"), "{e}");
        let e = error("x /* /* */");
        assert_eq!((e.line(), e.column()), (1, 3));
        let e = error("é \"x");
        assert_eq!((e.line(), e.column()), (1, 3));
        let e = error("$body$ x $bod$");
        assert!(e.message().contains("$body$"), "{e}");
        let e = error("E'\\'");
        assert!(e.message().contains("E''"), "{e}");
    }
}
