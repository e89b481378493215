//! Slow statements grouped by shape: literals become `$1`, `$2`, … (as
//! pg_stat_statements shows them), whitespace runs become one space, so
//! `select * from t where id = 7` and `… id = 8` are one query.

use sha2::{Digest, Sha256};

/// `text` with its string and number literals (and any `$n` it had)
/// numbered `$1`, `$2`, … in order, comments dropped, whitespace collapsed.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut i = 0;
    let mut param = |out: &mut String| {
        n += 1;
        out.push_str(&format!("${n}"));
    };
    while i < chars.len() {
        let c = chars[i];
        let prev_word = out
            .chars()
            .last()
            .is_some_and(|p| p.is_alphanumeric() || p == '_');
        if c == '\'' || ((c == 'E' || c == 'e') && chars.get(i + 1) == Some(&'\'') && !prev_word) {
            i = skip_string(&chars, if c == '\'' { i } else { i + 1 });
            param(&mut out);
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else if (c.is_ascii_digit() || (c == '$' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            && !prev_word
        {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            param(&mut out);
        } else if c == '"' {
            // A quoted identifier is kept as it is.
            let end = chars[i + 1..]
                .iter()
                .position(|&q| q == '"')
                .map_or(chars.len(), |p| i + p + 2);
            out.extend(&chars[i..end.min(chars.len())]);
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.trim_end().trim_end_matches(';').trim_end().to_string()
}

/// The index after the string literal that opens at `start` (a `'`);
/// `''` inside is a quote, a backslash escapes in E'' strings too.
fn skip_string(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\'') => i += 2,
            '\'' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// A short, stable name for a normalised query: 12 hex digits of its
/// SHA-256 (a series tag must be short; the text is in the events).
pub fn query_hash(normalized: &str) -> String {
    let digest = Sha256::digest(normalized.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_numbered_parameters() {
        assert_eq!(
            normalize("select *  from t\n where id = 7 and name = 'o''brien' and x > 1.5;"),
            "select * from t where id = $1 and name = $2 and x > $3"
        );
        assert_eq!(normalize("SELECT pg_sleep(0.3)"), "SELECT pg_sleep($1)");
        assert_eq!(
            normalize("update t2 set v = $1 where id = $2"),
            "update t2 set v = $1 where id = $2"
        );
    }

    #[test]
    fn identifiers_with_digits_and_quoted_names_stay() {
        assert_eq!(
            normalize("select c1 from \"T 2\" where t3.x=E'a\\'b'"),
            "select c1 from \"T 2\" where t3.x=$1"
        );
        assert_eq!(normalize("select 1 -- note\n, 2"), "select $1 , $2");
    }

    #[test]
    fn same_shape_same_hash() {
        let a = query_hash(&normalize("select * from t where id = 7"));
        let b = query_hash(&normalize("select *\tfrom t where id = 8"));
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
        assert_ne!(a, query_hash(&normalize("select * from u where id = 7")));
    }
}
