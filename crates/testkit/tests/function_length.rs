//! No non-test function in the workspace is over 80 lines: a function a
//! reader cannot see whole is one whose steps want names (issue 16).
//!
//! Reads every `.rs` file under each crate's `src/` (not `tests.rs`
//! files, and nothing under `tests/` or `examples/`), blanks out comments,
//! strings and character literals (keeping line breaks), drops every item
//! marked `#[cfg(test)]` (such as `mod tests { .. }`) and `#[test]`, and
//! measures each `fn NAME` with a body from its `fn` line to the line of
//! its closing brace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
#[path = "common/rust_lex.rs"]
mod rust_lex;
use rust_lex::{raw_string_at, skip_block_comment, skip_quoted, skip_raw_string};

/// The most lines a function may span, `fn` line and closing brace
/// included.
const LIMIT: usize = 80;

/// Functions known to be long and being split, as (file, fn name). A
/// listed function that is no longer long (or gone) fails the test too, so
/// the list only shrinks: remove its entry when the split lands.
/// (None today.)
const KNOWN: &[(&str, &str)] = &[];

#[test]
fn no_function_is_over_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = source_files(&root.join("crates"));
    assert!(
        files.len() > 100,
        "found only {} files: is the layout still crates/*/src?",
        files.len()
    );
    let mut long = BTreeSet::new();
    let mut report = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for f in functions(&text) {
            if f.lines > LIMIT {
                long.insert((rel.clone(), f.name.clone()));
                report.push((f.lines, rel.clone(), f.name, f.line));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(f, n)| (f.to_string(), n.to_string()))
        .collect();
    report.sort_by_key(|r| std::cmp::Reverse(r.0));
    let new: Vec<String> = report
        .iter()
        .filter(|(_, file, name, _)| !known.contains(&(file.clone(), name.clone())))
        .map(|(lines, file, name, line)| format!("{file}:{line}: fn {name} is {lines} lines"))
        .collect();
    let gone: Vec<String> = known
        .difference(&long)
        .map(|(file, name)| format!("(\"{file}\", \"{name}\"),"))
        .collect();
    assert!(
        new.is_empty(),
        "functions over {LIMIT} lines; name their steps as smaller functions:\n{}",
        new.join("\n")
    );
    assert!(
        gone.is_empty(),
        "these functions are no longer over {LIMIT} lines: remove them from KNOWN in {}:\n{}",
        file!(),
        gone.join("\n")
    );
}

#[test]
fn the_scanner_measures_functions() {
    let text = r#"
fn short() {
    let s = "a } brace in a string";
    let c = '}';
    // a } brace in a comment
    /* and { another */
}

pub(crate) async fn longer<T: Into<String>>(x: [u8; 2]) -> Result<(), ()>
where
    T: Clone,
{
    if true {
        let r = r"raw } string";
    }
    Ok(())
}

trait T { fn declared(&self); }

#[cfg(test)]
mod tests {
    fn hidden() {}
}

#[test]
fn also_hidden() {}

fn last<'a>(s: &'a str) -> &'a str { s }
"#;
    let got: Vec<(String, usize, usize)> = functions(text)
        .into_iter()
        .map(|f| (f.name, f.line, f.lines))
        .collect();
    let want = vec![
        ("short".to_string(), 2, 6),
        ("longer".to_string(), 9, 9),
        ("last".to_string(), 29, 1),
    ];
    assert_eq!(got, want);
}

/// Every `.rs` file of every crate's `src/`, sorted, test files left out.
fn source_files(crates: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = std::fs::read_dir(crates)
        .expect("reading crates/")
        .filter_map(|e| e.ok().map(|e| e.path().join("src")))
        .filter(|p| p.is_dir())
        .collect();
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "tests" && name != "examples" {
                    todo.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// One function found: its name, the 1-based line of `fn`, and how many
/// lines it spans.
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// Every function with a body in `text`, outside test-only items, in order.
fn functions(text: &str) -> Vec<Function> {
    let code: Vec<char> = blank(text).chars().collect();
    let line_of = |i: usize| code[..i].iter().filter(|c| **c == '\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        if starts_word(&code, i, "#[cfg(test)]") || starts_word(&code, i, "#[test]") {
            // Skip the whole item the attribute marks.
            i = item_end(&code, i);
        } else if starts_word(&code, i, "fn ") {
            let name_start = skip_spaces(&code, i + 2);
            let name_end = ident_end(&code, name_start);
            match body_open(&code, name_end) {
                Some(open) if name_end > name_start => {
                    let close = matching(&code, open);
                    out.push(Function {
                        name: code[name_start..name_end].iter().collect(),
                        line: line_of(i),
                        lines: line_of(close) - line_of(i) + 1,
                    });
                    // Nested functions are measured too: go on inside.
                    i = open + 1;
                }
                _ => i = name_end.max(i + 2),
            }
        } else {
            i += 1;
        }
    }
    out
}

/// `text` with comments, strings and character literals replaced by
/// spaces, line breaks kept, so braces in them do not count.
fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let end = if c == '/' && next == Some('/') {
            chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |n| i + n)
        } else if c == '/' && next == Some('*') {
            skip_block_comment(&chars, i)
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && raw_string_at(&chars, i) {
            skip_raw_string(&chars, i)
        } else if c == '"' {
            skip_quoted(&chars, i, '"')
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            skip_quoted(&chars, i, '\'')
        } else {
            i += 1;
            continue;
        };
        let end = end.min(chars.len());
        for ch in &mut out[i..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = end;
    }
    out.into_iter().collect()
}

/// Whether `word` starts at `i` and is not the tail of a longer identifier.
fn starts_word(code: &[char], i: usize, word: &str) -> bool {
    let before_ok = i == 0 || !(code[i - 1].is_alphanumeric() || code[i - 1] == '_');
    before_ok && word.chars().enumerate().all(|(k, w)| code.get(i + k) == Some(&w))
}

fn skip_spaces(code: &[char], mut i: usize) -> usize {
    while code.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

fn ident_end(code: &[char], mut i: usize) -> usize {
    while code.get(i).is_some_and(|c| c.is_alphanumeric() || *c == '_') {
        i += 1;
    }
    i
}

/// The `{` opening the body of the fn whose signature starts at `i`, or
/// `None` for a declaration ending in `;` (brackets and parentheses in
/// the signature, such as `[u8; 2]`, are stepped over).
fn body_open(code: &[char], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < code.len() {
        match code[i] {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => return None,
            '{' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the `}` matching the `{` at `open` (or the end).
fn matching(code: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    code.len() - 1
}

/// The index after the item whose attribute starts at `i`: its closing
/// brace, or its `;` when it has no body.
fn item_end(code: &[char], i: usize) -> usize {
    let attr_end = code[i..]
        .iter()
        .position(|c| *c == ']')
        .map_or(code.len(), |n| i + n + 1);
    match body_open(code, attr_end) {
        Some(open) => matching(code, open) + 1,
        None => code[attr_end..]
            .iter()
            .position(|c| *c == ';')
            .map_or(code.len(), |n| attr_end + n + 1),
    }
}
