//! Simple CHECK constraints as `pg_get_constraintdef` prints them: ranges
//! (`col >= a AND col <= b`, BETWEEN prints that way), `col > 0`, IN lists
//! (printed `col = ANY (ARRAY[...])`), `IS NOT NULL`. Anything else is
//! `None`, and the plan refuses it naming the constraint.

/// One condition on one column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// Lower bound, inclusive when true.
    Min(f64, bool),
    /// Upper bound, inclusive when true.
    Max(f64, bool),
    In(Vec<String>),
    NotNull,
}

/// The conditions of a CHECK definition, or `None` when it is not simple.
pub(crate) fn parse(definition: &str) -> Option<Vec<(String, Cond)>> {
    let body = definition.strip_prefix("CHECK ")?;
    let body = body.strip_suffix(" NOT VALID").unwrap_or(body);
    let flat = strip(body)?;
    split(&flat, " AND ")
        .into_iter()
        .map(|t| term(t.trim()))
        .collect()
}

/// Removes casts (`'a'::text`, `(0)::numeric`, `::character varying[]`) and
/// parentheses outside string literals; `None` at a function call.
fn strip(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        let c = b[i] as char;
        if c == '\'' {
            quoted = !quoted;
        }
        if !quoted && s[i..].starts_with("::") {
            i = skip_type(s, i + 2);
            continue;
        }
        if !quoted && c == '(' && i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
            return None;
        }
        if quoted || (c != '(' && c != ')') {
            out.push_str(&s[i..i + s[i..].chars().next().map_or(1, char::len_utf8)]);
        }
        i += s[i..].chars().next().map_or(1, char::len_utf8);
    }
    Some(out)
}

/// The end of a type name starting at `i`, multi-word names included.
fn skip_type(s: &str, mut i: usize) -> usize {
    let word = |i: usize| -> usize {
        let rest = &s[i..];
        i + rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '"' || c == '.'))
            .unwrap_or(rest.len())
    };
    let end = word(i);
    let first = &s[i..end];
    i = end;
    let tails: &[&str] = match first {
        "character" | "bit" => &[" varying"],
        "double" => &[" precision"],
        "timestamp" | "time" => &[" with time zone", " without time zone"],
        _ => &[],
    };
    if let Some(t) = tails.iter().find(|t| s[i..].starts_with(**t)) {
        i += t.len();
    }
    while s[i..].starts_with("[]") {
        i += 2;
    }
    i
}

/// Splits on `sep` outside string literals.
fn split<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let mut i = 0;
    while i < s.len() {
        if s.as_bytes()[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted && s[i..].starts_with(sep) {
            parts.push(&s[start..i]);
            i += sep.len();
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

fn term(t: &str) -> Option<(String, Cond)> {
    if let Some(col) = t.strip_suffix(" IS NOT NULL") {
        return Some((ident(col)?, Cond::NotNull));
    }
    if let Some((col, list)) = t.split_once(" = ANY ARRAY[") {
        let list = list.strip_suffix(']')?;
        let values = split(list, ", ")
            .into_iter()
            .map(literal)
            .collect::<Option<Vec<_>>>()?;
        return Some((ident(col)?, Cond::In(values)));
    }
    for op in [">=", "<=", "<>", ">", "<", "="] {
        if let Some((l, r)) = t.split_once(&format!(" {op} ")) {
            let (col, value, op) = match (ident(l), ident(r)) {
                (Some(c), None) => (c, r, op.to_string()),
                (None, Some(c)) => (c, l, flip(op)),
                _ => return None,
            };
            let text = literal(value)?;
            let n = || text.parse::<f64>().ok().filter(|n| n.is_finite());
            return Some((
                col,
                match op.as_str() {
                    ">=" => Cond::Min(n()?, true),
                    ">" => Cond::Min(n()?, false),
                    "<=" => Cond::Max(n()?, true),
                    "<" => Cond::Max(n()?, false),
                    "=" => Cond::In(vec![text]),
                    _ => return None,
                },
            ));
        }
    }
    None
}

fn flip(op: &str) -> String {
    match op {
        ">=" => "<=",
        "<=" => ">=",
        ">" => "<",
        "<" => ">",
        o => o,
    }
    .to_string()
}

/// A column name: plain or double-quoted.
fn ident(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(q) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Some(q.replace("\"\"", "\""));
    }
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(s, "true" | "false" | "null");
    ok.then(|| s.to_string())
}

/// A literal's text: `'a'`, `'-5'`, `10`, `2.5`.
fn literal(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(q) = s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(q.replace("''", "'"));
    }
    s.parse::<f64>().ok().map(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_lists_and_refusals_as_postgres_prints_them() {
        assert_eq!(
            parse("CHECK (((qty >= 1) AND (qty <= 10)))"),
            Some(vec![
                ("qty".into(), Cond::Min(1.0, true)),
                ("qty".into(), Cond::Max(10.0, true))
            ])
        );
        assert_eq!(
            parse("CHECK ((price > (0)::numeric))"),
            Some(vec![("price".into(), Cond::Min(0.0, false))])
        );
        assert_eq!(
            parse("CHECK ((t >= '-5'::integer)) NOT VALID"),
            Some(vec![("t".into(), Cond::Min(-5.0, true))])
        );
        assert_eq!(
            parse(
                "CHECK (((kind)::text = ANY ((ARRAY['a b'::character varying, 'c'::character varying])::text[])))"
            ),
            Some(vec![("kind".into(), Cond::In(vec!["a b".into(), "c".into()]))])
        );
        assert_eq!(parse("CHECK ((length(name) > 3))"), None);
        assert_eq!(parse("CHECK (((a > 0) OR (b > 0)))"), None);
        assert_eq!(parse("CHECK ((a < b))"), None);
    }
}
