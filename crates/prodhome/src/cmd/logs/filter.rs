//! `--level` and `--grep`: which entries of a log are printed. A Postgres
//! entry has its severity from the jsonlog; a line of a text log (the
//! supervisor's file, a service) has the first level word it shows, or
//! none (then it is `info`).

use anyhow::{Result, anyhow};

/// Levels from least to most severe; Postgres's LOG counts as `info`.
const LEVELS: &[(&str, &[&str])] = &[
    (
        "debug",
        &["DEBUG", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5", "TRACE"],
    ),
    (
        "info",
        &["INFO", "LOG", "NOTICE", "STATEMENT", "DETAIL", "HINT", "CONTEXT"],
    ),
    ("warning", &["WARNING", "WARN"]),
    ("error", &["ERROR"]),
    ("fatal", &["FATAL", "PANIC", "CRITICAL"]),
];

/// The rank of a level name (either spelling, any case).
pub(crate) fn rank(word: &str) -> Option<usize> {
    let upper = word.to_ascii_uppercase();
    LEVELS
        .iter()
        .position(|(name, words)| name.eq_ignore_ascii_case(&upper) || words.contains(&upper.as_str()))
}

/// What the user asked to see.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    min: usize,
    grep: Option<String>,
}

impl Filter {
    pub(crate) fn new(level: Option<&str>, grep: Option<&str>) -> Result<Filter> {
        let min = match level {
            None => 0,
            Some(l) => rank(l).ok_or_else(|| {
                let names: Vec<&str> = LEVELS.iter().map(|(n, _)| *n).collect();
                anyhow!("--level {l}: not a level; use one of {}", names.join(", "))
            })?,
        };
        Ok(Filter {
            min,
            grep: grep.map(str::to_string),
        })
    }

    /// True when an entry of level `level` (None: read it from the text)
    /// with text `text` is printed.
    pub(crate) fn keeps(&self, level: Option<usize>, text: &str) -> bool {
        let level = level.unwrap_or_else(|| text_level(text));
        level >= self.min && self.grep.as_deref().is_none_or(|g| text.contains(g))
    }
}

/// The level a text line shows: its first word (of the first few) that
/// names one, with a `:` after it or inside brackets (`ERROR:`,
/// `[warn]`, `level=error`).
fn text_level(text: &str) -> usize {
    text.split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == '=' || c == '"')
        .take(8)
        .filter(|w| !w.is_empty())
        .find_map(|w| rank(w.trim_end_matches(':')))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_words_and_text() {
        assert_eq!(rank("error"), rank("ERROR"));
        assert!(rank("fatal") > rank("error") && rank("error") > rank("LOG"));
        assert_eq!(
            text_level("2026-01-01 10:00:00 UTC [1] postgres@postgres ERROR:  boom"),
            3
        );
        assert_eq!(text_level("level=warn msg=slow"), 2);
        assert_eq!(text_level("plain words"), 1);
    }

    #[test]
    fn level_and_grep_both_apply() {
        let f = Filter::new(Some("error"), Some("zero")).unwrap();
        assert!(f.keeps(rank("ERROR"), "division by zero"));
        assert!(f.keeps(rank("FATAL"), "zero"));
        assert!(!f.keeps(rank("LOG"), "division by zero"));
        assert!(!f.keeps(rank("ERROR"), "duplicate key"));
        assert!(
            Filter::new(Some("loud"), None)
                .unwrap_err()
                .to_string()
                .contains("use one of debug")
        );
    }
}
