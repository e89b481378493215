//! What a statement is, from its leading tokens: does it write rows (or move
//! a sequence), and which table does it create.

use crate::lexer::Tok;
use crate::{Kind, Statement};

/// Data: statements that write rows or set a sequence; everything else
/// (SET, CREATE, ALTER, COMMENT, GRANT, set_config ...) defines.
pub(crate) fn kind(head: &[Tok<'_>], top_dml: bool) -> Kind {
    let words: Vec<String> = head.iter().take(6).map(word).collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    if matches!(w(0), "begin" | "start" | "commit" | "end") {
        return Kind::Transaction;
    }
    let data = match w(0) {
        "insert" | "update" | "delete" | "merge" | "truncate" => true,
        "copy" => head
            .iter()
            .any(|t| matches!(t, Tok::Word(x) if x.eq_ignore_ascii_case("from"))),
        "with" => top_dml,
        // SELECT pg_catalog.setval(...) / SELECT setval(...) / nextval.
        "select" => {
            let function = if w(2) == "." { w(3) } else { w(1) };
            matches!(function, "setval" | "nextval")
        }
        _ => false,
    };
    if data { Kind::Data } else { Kind::Definition }
}

/// A token as a lowercase word (quoted identifiers as written), or its
/// punctuation.
fn word(tok: &Tok<'_>) -> String {
    match tok {
        Tok::Word(w) => w.to_ascii_lowercase(),
        Tok::Quoted(q) => q.clone(),
        Tok::Punct(c) => c.to_string(),
        Tok::Str(_) | Tok::Meta(_) => String::new(),
    }
}

/// A table name as a script writes it: schema when qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

/// `CREATE [GLOBAL|LOCAL] [UNLOGGED] TABLE [IF NOT EXISTS] [schema.]name`;
/// temporary tables do not count (they vanish with the session).
pub(crate) fn created_table(head: &[Tok<'_>]) -> Option<Name> {
    let is = |i: usize, w: &str| matches!(head.get(i), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w));
    if !is(0, "create") {
        return None;
    }
    let mut i = 1;
    while is(i, "global") || is(i, "local") || is(i, "unlogged") {
        i += 1;
    }
    if !is(i, "table") {
        return None;
    }
    i += 1;
    if is(i, "if") && is(i + 1, "not") && is(i + 2, "exists") {
        i += 3;
    }
    qualified_name(&head[i.min(head.len())..])
}

/// `a`, `a.b` or `db.a.b` from the tokens at the start of `tokens`.
fn qualified_name(tokens: &[Tok<'_>]) -> Option<Name> {
    let mut parts = Vec::new();
    let mut i = 0;
    loop {
        parts.push(identifier(tokens.get(i)?)?);
        if !matches!(tokens.get(i + 1), Some(Tok::Punct('.'))) {
            break;
        }
        i += 2;
    }
    let table = parts.pop()?;
    Some(Name {
        schema: parts.pop(),
        table,
    })
}

fn identifier(tok: &Tok<'_>) -> Option<String> {
    match tok {
        Tok::Word(w) => Some(w.to_ascii_lowercase()),
        Tok::Quoted(q) => Some(q.clone()),
        _ => None,
    }
}

/// The first schema of `SET [SESSION|LOCAL] search_path {=|TO} ...`, where
/// unqualified tables are created from then on.
pub(crate) fn search_path(head: &[Tok<'_>]) -> Option<String> {
    let words: Vec<String> = head.iter().map(word).collect();
    let mut i = usize::from(words.get(1).is_some_and(|w| w == "session" || w == "local"));
    if words.first()? != "set" || words.get(i + 1)? != "search_path" {
        return None;
    }
    i += 2;
    if !matches!(words.get(i).map(String::as_str), Some("=" | "to")) {
        return None;
    }
    let values = head[i + 1..].iter().filter_map(|t| match t {
        Tok::Word(w) => Some(w.to_ascii_lowercase()),
        Tok::Quoted(q) => Some(q.clone()),
        Tok::Str(s) => s.split(',').next().map(|s| s.trim().to_string()),
        _ => None,
    });
    values
        .filter(|v| v != "$user" && v != "\"$user\"")
        .find(|v| !v.is_empty())
}

/// Every table `statements` create, as `schema.table` (unqualified ones in
/// the schema a preceding `SET search_path` names, else `public`), in file
/// order.
pub fn created_tables(statements: &[Statement<'_>]) -> Vec<String> {
    let mut schema = String::from("public");
    let mut tables = Vec::new();
    for statement in statements {
        if let Some(first) = search_path(&statement.head) {
            schema = first;
        } else if let Some(name) = created_table(&statement.head) {
            let in_schema = name.schema.unwrap_or_else(|| schema.clone());
            tables.push(format!("{in_schema}.{}", name.table));
        }
    }
    tables
}
