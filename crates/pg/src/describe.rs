//! What the server binary says about postgresql.conf settings, asked before
//! any cluster exists: so that a misspelled name or a bad value in the lab
//! file is reported at once, not as a server that restarts until `up` times
//! out.
//!
//! Two questions, both answered by the binary itself in a few milliseconds:
//! - [`describe_config`]: `postgres --describe-config`, the settings it
//!   documents with their type and range (for "did you mean" and for saying
//!   what a setting takes). It leaves out ~45 real settings (developer
//!   options, `application_name`, …) and names no units or enum values, so it
//!   is not the judge.
//! - [`judge_settings`]: the judge. The settings are written to a
//!   postgresql.conf of their own in a scratch directory and read by
//!   `postgres -D DIR -C port`, the server's own config-file parser: it
//!   names every unknown setting (by line) and, once every name is known,
//!   every value it rejects (by name), exactly as a start would.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};

/// One setting `postgres --describe-config` documents.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingInfo {
    pub name: String,
    pub kind: SettingKind,
    /// The range of an integer or real setting.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    Bool,
    Integer,
    Real,
    String,
    Enum,
}

impl SettingInfo {
    /// What a value of this setting looks like, for a help line.
    pub fn takes(&self) -> String {
        let range = match (self.min, self.max) {
            (Some(min), Some(max)) => format!(" from {} to {}", number(min), number(max)),
            _ => String::new(),
        };
        match self.kind {
            SettingKind::Bool => format!("`{}` takes a boolean: true or false (on, off)", self.name),
            SettingKind::Integer => format!(
                "`{}` takes an integer{range}, or a quantity with a unit where it has one (\"128MB\", \"30s\")",
                self.name
            ),
            SettingKind::Real => format!("`{}` takes a number{range}", self.name),
            SettingKind::String => format!("`{}` takes a string", self.name),
            SettingKind::Enum => format!("`{}` takes one of a fixed set of words", self.name),
        }
    }
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// The settings the binary documents, in its order.
pub fn describe_config(bins: &Binaries) -> Result<Vec<SettingInfo>, Error> {
    let postgres = bins.tool("postgres");
    // Postgres allows --describe-config as root: it starts nothing.
    let out = Command::new(&postgres)
        .arg("--describe-config")
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| {
            Error::with(
                ErrorKind::Binaries,
                format!("running {} --describe-config", postgres.display()),
                e,
            )
        })?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::Binaries,
            format!(
                "{} --describe-config failed ({}): {}",
                postgres.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(parse_describe(&String::from_utf8_lossy(&out.stdout)))
}

/// Tab-separated: name, context, group, type, default, min, max, short and
/// long description.
fn parse_describe(text: &str) -> Vec<SettingInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let kind = match *fields.get(3)? {
                "BOOLEAN" => SettingKind::Bool,
                "INTEGER" => SettingKind::Integer,
                "REAL" => SettingKind::Real,
                "STRING" => SettingKind::String,
                "ENUM" => SettingKind::Enum,
                _ => return None,
            };
            Some(SettingInfo {
                name: fields[0].to_string(),
                kind,
                min: fields.get(5).and_then(|v| v.parse().ok()),
                max: fields.get(6).and_then(|v| v.parse().ok()),
            })
        })
        .collect()
}

/// What the server's config-file parser rejected in one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// Index into the settings that were judged.
    pub index: usize,
    /// True when the name is unknown; false when the value is rejected.
    pub unknown_name: bool,
    /// The server's own words (`invalid value for parameter "x": "lots"`).
    pub message: String,
    /// Its HINT or DETAIL lines, if any (enum settings list their values).
    pub hint: Option<String>,
}

/// Reads `settings` (name, value rendered for postgresql.conf) the way a
/// server start would, running the binary as `account`, and returns every
/// setting it rejects. Unknown names stop the server's parser before it
/// looks at values, so when there are any the rest are read again without
/// them. An error means the question could not be asked (the binary did
/// not run), not that the settings are wrong.
pub fn judge_settings(
    bins: &Binaries,
    account: &Account,
    settings: &[(String, String)],
) -> Result<Vec<SettingProblem>, Error> {
    if settings.is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<usize> = (0..settings.len()).collect();
    let mut problems = read_conf(bins, account, settings, &all)?;
    if problems.iter().any(|p| p.unknown_name) {
        let known: Vec<usize> = all
            .into_iter()
            .filter(|i| !problems.iter().any(|p| p.index == *i))
            .collect();
        if !known.is_empty() {
            problems.extend(read_conf(bins, account, settings, &known)?);
        }
    }
    problems.sort_by_key(|p| (p.index, !p.unknown_name));
    Ok(problems)
}

/// One reading by `postgres -C` of a postgresql.conf holding `which` of
/// `settings`, one per line.
fn read_conf(
    bins: &Binaries,
    account: &Account,
    settings: &[(String, String)],
    which: &[usize],
) -> Result<Vec<SettingProblem>, Error> {
    let scratch = Scratch::new(account)?;
    let conf: String = which
        .iter()
        .map(|&i| format!("{} = {}\n", settings[i].0, settings[i].1))
        .collect();
    scratch.write("postgresql.conf", &conf)?;
    let postgres = bins.tool("postgres");
    let mut cmd = Command::new(&postgres);
    // -C prints a setting and exits without touching a data directory;
    // reading the file is what it must do first. Messages in English, so
    // they can be read back.
    cmd.arg("-D")
        .arg(&scratch.dir)
        .args(["-C", "port", "-c", "lc_messages=C"])
        .env("LC_ALL", "C");
    if account.switch {
        std::os::unix::process::CommandExt::uid(&mut cmd, account.uid);
        std::os::unix::process::CommandExt::gid(&mut cmd, account.gid);
    }
    let out = cmd.output().map_err(|e| {
        Error::with(
            ErrorKind::Binaries,
            format!("running {} -C", postgres.display()),
            e,
        )
    })?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    let lines: Vec<usize> = which.to_vec();
    Ok(parse_complaints(
        &String::from_utf8_lossy(&out.stderr),
        |line| lines.get(line.checked_sub(1)?).copied(),
        |name| which.iter().copied().find(|&i| settings[i].0 == name),
    ))
}

/// The server's LOG lines about parameters, with the HINT/DETAIL lines that
/// follow each. `by_line` maps a postgresql.conf line to a setting index,
/// `by_name` a parameter name.
fn parse_complaints(
    stderr: &str,
    by_line: impl Fn(usize) -> Option<usize>,
    by_name: impl Fn(&str) -> Option<usize>,
) -> Vec<SettingProblem> {
    let mut problems: Vec<SettingProblem> = Vec::new();
    let mut last_was_ours = false;
    for line in stderr.lines() {
        if let Some(hint) = after(line, "HINT:").or_else(|| after(line, "DETAIL:")) {
            if last_was_ours && let Some(p) = problems.last_mut() {
                p.hint = Some(match p.hint.take() {
                    Some(h) => format!("{h} {hint}"),
                    None => hint.to_string(),
                });
            }
            continue;
        }
        last_was_ours = false;
        let Some(message) = after(line, "LOG:").or_else(|| after(line, "ERROR:")) else {
            continue;
        };
        let Some(name) = quoted_after(message, "parameter \"") else {
            continue;
        };
        let unknown_name = message.starts_with("unrecognized configuration parameter");
        let index = if unknown_name {
            quoted_number_after(message, " line ").and_then(&by_line)
        } else {
            None
        }
        .or_else(|| by_name(name));
        let Some(index) = index else { continue };
        // "in file "/tmp/…/postgresql.conf" line 3" is about our scratch
        // file, not the lab file: drop it.
        let message = match message.find(" in file \"") {
            Some(at) => &message[..at],
            None => message,
        };
        problems.push(SettingProblem {
            index,
            unknown_name,
            message: message.to_string(),
            hint: None,
        });
        last_was_ours = true;
    }
    problems
}

/// The text after `tag` and its padding, when the line carries `tag`.
fn after<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let at = line.find(tag)?;
    Some(line[at + tag.len()..].trim())
}

fn quoted_after<'a>(text: &'a str, open: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

fn quoted_number_after(text: &str, marker: &str) -> Option<usize> {
    let start = text.rfind(marker)? + marker.len();
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A private directory that holds one postgresql.conf, readable by the
/// server account, removed on drop.
struct Scratch {
    dir: PathBuf,
    account: Account,
}

impl Scratch {
    fn new(account: &Account) -> Result<Scratch, Error> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "prodhome-settings-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let made = std::fs::create_dir(&dir)
            .and_then(|()| account.own(&dir))
            .map_err(|e| Error::with(ErrorKind::Init, format!("creating {}", dir.display()), e));
        let scratch = Scratch {
            dir,
            account: account.clone(),
        };
        made.map(|()| scratch)
    }

    fn write(&self, name: &str, text: &str) -> Result<(), Error> {
        let path = self.dir.join(name);
        std::fs::write(&path, text)
            .and_then(|()| self.account.own(&path))
            .map_err(|e| Error::with(ErrorKind::Init, format!("writing {}", path.display()), e))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_lines_become_settings() {
        let text = "max_connections\tpostmaster\tConnections\tINTEGER\t0\t1\t262143\tSets the max.\t\n\
                    fsync\tsighup\tWAL\tBOOLEAN\tFALSE\t\t\tForces sync.\t\n\
                    garbage line\n";
        let settings = parse_describe(text);
        assert_eq!(settings.len(), 2);
        assert_eq!(settings[0].name, "max_connections");
        assert_eq!((settings[0].min, settings[0].max), (Some(1.0), Some(262143.0)));
        assert_eq!(settings[1].kind, SettingKind::Bool);
        assert_eq!(settings[1].min, None);
        assert!(
            settings[0].takes().contains("from 1 to 262143"),
            "{}",
            settings[0].takes()
        );
    }

    #[test]
    fn complaints_map_to_settings_by_line_and_by_name() {
        let stderr = "\
2026-12-01 19:13:03.439 GMT [1] LOG:  skipping missing configuration file \"/tmp/x/postgresql.auto.conf\"
2026-12-01 19:13:03.439 GMT [1] LOG:  unrecognized configuration parameter \"max_conections\" in file \"/tmp/x/postgresql.conf\" line 2
2026-12-01 19:13:03.439 GMT [1] LOG:  invalid value for parameter \"wal_level\": \"bogus\"
2026-12-01 19:13:03.439 GMT [1] HINT:  Available values: minimal, replica, logical.
2026-12-01 19:13:03.439 GMT [1] LOG:  -5 is outside the valid range for parameter \"max_connections\" (1 .. 262143)
2026-12-01 19:13:03.439 GMT [1] LOG:  invalid value for parameter \"lc_messages\": \"x\"
2026-12-01 19:13:03.439 GMT [1] FATAL:  configuration file \"/tmp/x/postgresql.conf\" contains errors
";
        // Lines 1, 2, 3 of the file hold settings 4, 7, 9.
        let lines = [4, 7, 9];
        let names = [(9, "wal_level"), (4, "max_connections")];
        let problems = parse_complaints(
            stderr,
            |l| lines.get(l.checked_sub(1)?).copied(),
            |n| names.iter().find(|(_, name)| *name == n).map(|(i, _)| *i),
        );
        let got: Vec<_> = problems
            .iter()
            .map(|p| (p.index, p.unknown_name, p.message.as_str(), p.hint.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    7,
                    true,
                    "unrecognized configuration parameter \"max_conections\"",
                    None
                ),
                (
                    9,
                    false,
                    "invalid value for parameter \"wal_level\": \"bogus\"",
                    Some("Available values: minimal, replica, logical.")
                ),
                (
                    4,
                    false,
                    "-5 is outside the valid range for parameter \"max_connections\" (1 .. 262143)",
                    None
                ),
            ]
        );
    }

    #[test]
    fn the_server_binary_judges_names_and_values() {
        let bins = crate::find_binaries(15).expect("PostgreSQL 15 binaries");
        let account = Account::resolve(None).expect("an account to run servers as");
        let settings: Vec<(String, String)> = [
            ("max_conections", "200"),
            ("shared_buffers", "'lots'"),
            ("application_name", "'not in --describe-config, still fine'"),
            ("pg_stat_statements.max", "100"),
            ("max_connections", "-5"),
            ("work_mem", "'4MB'"),
            ("synchronous_commit", "'maybe'"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let problems = judge_settings(&bins, &account, &settings).unwrap();
        let got: Vec<(usize, bool)> = problems.iter().map(|p| (p.index, p.unknown_name)).collect();
        assert_eq!(
            got,
            [(0, true), (1, false), (4, false), (6, false)],
            "{problems:#?}"
        );
        assert!(
            problems[3].hint.as_deref().unwrap().contains("remote_apply"),
            "{problems:#?}"
        );
        let fine = &settings[2..4];
        assert_eq!(judge_settings(&bins, &account, fine).unwrap(), []);

        let described = describe_config(&bins).unwrap();
        assert!(described.len() > 200, "{}", described.len());
        assert!(
            described
                .iter()
                .any(|s| s.name == "max_connections" && s.kind == SettingKind::Integer)
        );
    }
}
