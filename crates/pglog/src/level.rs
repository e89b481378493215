//! The level of one line an app service printed: read from a JSON line's
//! level field, or with the regex the lab sets (`[service.NAME] log_level`,
//! a `level` group), and mapped onto one small set of levels whatever the
//! framework calls them (`warning`, `WARN`, `Warn` are all `warn`).

use serde_json::{Map, Value};

/// A line's level, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    /// No level could be read from the line (not JSON, no level field, the
    /// regex did not match, or a word no framework uses).
    Unknown,
}

impl Level {
    /// The `level` tag's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
            Level::Unknown => "unknown",
        }
    }

    /// The level a word names, case-insensitively, in the spellings of
    /// common loggers (log4j, logrus, zap, Python's logging, syslog, Rails).
    pub fn from_word(word: &str) -> Level {
        let word = word.trim().to_ascii_lowercase();
        match word.as_str() {
            "trace" | "trc" | "verbose" | "finest" | "finer" => Level::Trace,
            "debug" | "dbg" | "fine" => Level::Debug,
            w if w.starts_with("debug") => Level::Debug,
            "info" | "inf" | "information" | "informational" | "notice" | "log" => Level::Info,
            "warn" | "warning" | "wrn" => Level::Warn,
            "error" | "err" | "eror" | "severe" => Level::Error,
            "fatal" | "ftl" | "critical" | "crit" | "panic" | "alert" | "emerg" | "emergency" => Level::Fatal,
            _ => Level::Unknown,
        }
    }

    /// pino's and bunyan's numeric levels (10 trace … 60 fatal).
    fn from_number(n: i64) -> Level {
        match n {
            10 => Level::Trace,
            20 => Level::Debug,
            30 => Level::Info,
            40 => Level::Warn,
            50 => Level::Error,
            60 => Level::Fatal,
            _ => Level::Unknown,
        }
    }
}

/// How a service's lines tell their level.
#[derive(Debug, Clone)]
pub enum LevelRule {
    /// JSON lines with a `level`, `lvl`, `severity` or `log.level` field
    /// (any case; `log.level` also nested as `{"log": {"level": …}}`).
    Json,
    /// The lab's regex; its `level` group holds the word.
    Regex(regex_lite::Regex),
}

/// The level fields of JSON loggers, compared case-insensitively.
const JSON_KEYS: &[&str] = &["level", "lvl", "severity", "log.level"];

impl LevelRule {
    /// The lab's `log_level` regex, or JSON without one. The lab checked
    /// the regex; one that fails here anyway is reported, not guessed at.
    pub fn new(regex: Option<&str>) -> Result<LevelRule, regex_lite::Error> {
        match regex {
            None => Ok(LevelRule::Json),
            Some(re) => Ok(LevelRule::Regex(regex_lite::Regex::new(re)?)),
        }
    }

    /// The level of one line (with or without its newline).
    pub fn level(&self, line: &[u8]) -> Level {
        let text = String::from_utf8_lossy(line);
        match self {
            LevelRule::Json => json_level(text.trim()),
            LevelRule::Regex(re) => re
                .captures(&text)
                .and_then(|c| c.name("level"))
                .map_or(Level::Unknown, |m| Level::from_word(m.as_str())),
        }
    }
}

fn json_level(text: &str) -> Level {
    if !text.starts_with('{') {
        return Level::Unknown;
    }
    let Ok(object) = serde_json::from_str::<Map<String, Value>>(text) else {
        return Level::Unknown;
    };
    let nested = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("log"))
        .and_then(|(_, v)| v.as_object())
        .and_then(|log| field(log, &["level"]));
    match field(&object, JSON_KEYS).or(nested) {
        Some(Value::String(word)) => Level::from_word(word),
        Some(Value::Number(n)) => n.as_i64().map_or(Level::Unknown, Level::from_number),
        _ => Level::Unknown,
    }
}

fn field<'a>(object: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|key| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_give_their_level_in_any_spelling() {
        let json = LevelRule::Json;
        let cases = [
            (r#"{"level":"info","msg":"up"}"#, Level::Info),
            (r#"{"lvl":"WARNING","msg":"slow"}"#, Level::Warn),
            (r#"{"Severity":"Err"}"#, Level::Error),
            (r#"{"log.level":"critical"}"#, Level::Fatal),
            (r#"{"log":{"level":"debug"},"message":"x"}"#, Level::Debug),
            (r#"{"level":50,"msg":"pino"}"#, Level::Error),
            (r#"  {"level":"trace"}"#, Level::Trace),
            (r#"{"level":"chatty"}"#, Level::Unknown),
            (r#"{"msg":"no level"}"#, Level::Unknown),
            (r#"{"level": "info""#, Level::Unknown),
            ("INFO plain text", Level::Unknown),
            ("", Level::Unknown),
        ];
        for (line, want) in cases {
            assert_eq!(json.level(line.as_bytes()), want, "{line}");
        }
    }

    #[test]
    fn a_regex_reads_the_level_group() {
        let rule = LevelRule::new(Some(r"^\S+ \[(?P<level>[A-Za-z]+)\]")).unwrap();
        assert_eq!(rule.level(b"12:00:01 [WARN] disk low\n"), Level::Warn);
        assert_eq!(rule.level(b"12:00:01 [fatal] gone"), Level::Fatal);
        assert_eq!(rule.level(b"no brackets here"), Level::Unknown);
        // The regex decides: a JSON line it does not match is unknown.
        assert_eq!(rule.level(br#"{"level":"info"}"#), Level::Unknown);
        assert!(LevelRule::new(Some("(")).is_err());
    }
}
