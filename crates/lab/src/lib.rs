//! The lab file: reading `prodhome.toml`, checking it, and turning it into a
//! [`Plan`]. Data flows one way: the TOML text is read into serde types that
//! mirror it (`raw`, with a byte span on every value an error may point at),
//! then checked (`check`) into a `Plan` whose every name refers to something
//! that exists, with schema files already read and a fingerprint of all the
//! inputs. Checking collects every problem, each located by file, line and
//! column ([`LabError`], gathered in [`LabErrors`]); it touches no network and
//! starts nothing. The daemon turns the `Plan` into each stage's options; the
//! `init` module holds the seed lab that `prodhome init` writes and that `up`
//! runs when there is no lab file ([`seed`]).

mod check;
mod duration;
pub mod init;
mod plan;
mod raw;

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use duration::parse_duration;
pub use plan::{
    AlertPlan, Backend, DataGenerator, DataPlan, Ddl, DependsOn, HumPlan, HumWorkload, InfluxPlan, NodePlan,
    Plan, ProbeCheckPlan, ProbePlan, QueryPlan, ReplicationPlan, RestartPlan, SamplePlan, SchemaFile,
    SecretPlan, ServicePlan, ServiceRun, SettingAt, Tables,
};

/// A place in a file, 1-based line and column (column counted in chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem with a lab file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError {
    /// Where the problem is; `None` when there is no text to point into
    /// (the lab file could not be read).
    pub location: Option<Location>,
    /// What is wrong, starting with the key path (`postgres.publisher.port:`).
    pub message: String,
    /// What to do about it, when there is something useful to say.
    pub help: Option<String>,
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LabError {}

/// Every problem found (checking collects all errors, not just the first),
/// in file order.
#[derive(Debug)]
pub struct LabErrors(pub Vec<LabError>);

impl fmt::Display for LabErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LabErrors {}

/// Reads and checks the lab file at `path`. Schema files are resolved against
/// the lab file's directory. Errors name `path` as given; the plan records
/// the canonical absolute path.
pub fn load(path: &Path) -> Result<Plan, LabErrors> {
    let unreadable = |error: io::Error| {
        let help = (error.kind() == io::ErrorKind::NotFound)
            .then(|| "run `prodhome init` to write the seed lab, or pass the path of a lab file".into());
        LabErrors(vec![LabError {
            location: None,
            message: format!("cannot read lab file {}: {error}", path.display()),
            help,
        }])
    };
    let source = std::fs::read_to_string(path).map_err(unreadable)?;
    let canonical = path.canonicalize().map_err(unreadable)?;
    let dir = canonical.parent().map(Path::to_path_buf).unwrap_or_default();
    let inputs = check::Inputs {
        source: &source,
        file: path,
        plan_file: Some(canonical.clone()),
        dir: &dir,
        read: &read_file,
    };
    finish(&inputs)
}

/// Checks lab text that came from `file` (used in error locations and as
/// `Plan::file`); relative schema paths are resolved against `dir`.
pub fn parse(source: &str, file: &Path, dir: &Path) -> Result<Plan, LabErrors> {
    let inputs = check::Inputs {
        source,
        file,
        plan_file: Some(file.to_path_buf()),
        dir,
        read: &read_file,
    };
    finish(&inputs)
}

/// The built-in seed lab, as `prodhome init` would write it, checked without
/// touching the disk: its `schema.sql` is [`init::SEED_SCHEMA`]. `file` is
/// `None`; `dir` is the current directory.
pub fn seed() -> Plan {
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let schema = dir.join(init::SEED_SCHEMA_FILE);
    let read = |p: &Path| {
        if p == schema {
            Ok(init::SEED_SCHEMA.as_bytes().to_vec())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    };
    let inputs = check::Inputs {
        source: init::SEED_TOML,
        // Not `prodhome.toml`: that file may not exist, or be another lab.
        file: Path::new(SEED_FILE),
        plan_file: None,
        dir: &dir,
        read: &read,
    };
    // The seed is a constant, and a unit test checks it; failing here is a
    // bug in this crate, not in anyone's input.
    finish(&inputs).unwrap_or_else(|errors| panic!("the built-in seed lab is invalid:\n{errors}"))
}

/// The candidate closest to `word` by edit distance, when it is plausibly a
/// typo of it: for "did you mean" hints outside this crate (Postgres
/// setting names, checked against the server binary).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    raw::closest(word, candidates)
}

/// Reads a file a lab names (a schema, a hum script). A directory gets its
/// own message: "Is a directory (os error 21)" does not say what to do.
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory; name a file in it",
        ));
    }
    std::fs::read(path)
}

/// Where the seed lab's locations ([`Plan::postgres_version_at`]) point.
pub const SEED_FILE: &str = "(built-in seed lab)";

/// The line and column of `byte_offset` in `source`. An offset past the end
/// points just after the last character; one inside a character points at it.
pub fn location_at(source: &str, file: &Path, byte_offset: usize) -> Location {
    let mut offset = byte_offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        file: file.to_path_buf(),
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// A problem found while reading or checking, located by byte span; turned
/// into a [`LabError`] once the source and file are at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) span: Range<usize>,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

impl Problem {
    pub(crate) fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

fn finish(inputs: &check::Inputs<'_>) -> Result<Plan, LabErrors> {
    let checked = match raw::read(inputs.source) {
        Ok(doc) => check::check(doc, inputs),
        Err(syntax) => Err(vec![syntax]),
    };
    checked.map_err(|mut problems| {
        // Stable, so problems at one place keep the order they were found in.
        problems.sort_by_key(|p| p.span.start);
        LabErrors(
            problems
                .into_iter()
                .map(|p| LabError {
                    location: Some(location_at(inputs.source, inputs.file, p.span.start)),
                    message: p.message,
                    help: p.help,
                })
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_chars() {
        let src = "a = 1\nné = \"x\"\n";
        let file = Path::new("f.toml");
        let at = |offset| {
            let l = location_at(src, file, offset);
            (l.line, l.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(4), (1, 5));
        assert_eq!(at(6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(at(9), (2, 3));
        // Inside `é`: the character itself.
        assert_eq!(at(8), (2, 2));
        assert_eq!(at(1000), (3, 1));
        assert_eq!(location_at(src, file, 4).to_string(), "f.toml:1:5");
    }

    #[test]
    fn errors_display_with_location_and_help() {
        let errors = LabErrors(vec![
            LabError {
                location: Some(Location {
                    file: "lab.toml".into(),
                    line: 2,
                    column: 3,
                }),
                message: "port: bad".into(),
                help: Some("fix it".into()),
            },
            LabError {
                location: None,
                message: "cannot read".into(),
                help: None,
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "lab.toml:2:3: port: bad\n  help: fix it\n\ncannot read"
        );
    }

    #[test]
    fn load_names_an_unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let errors = load(&missing).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        let error = &errors.0[0];
        assert_eq!(error.location, None);
        assert!(error.message.contains(&*missing.display().to_string()), "{error}");
        assert!(error.message.contains("No such file"), "{error}");
        assert!(error.help.as_deref().unwrap().contains("prodhome init"));
    }

    #[test]
    fn load_resolves_the_file_and_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        init::write_seed(dir.path(), false).unwrap();
        let plan = load(&dir.path().join("prodhome.toml")).unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(plan.file, Some(canonical.join("prodhome.toml")));
        assert_eq!(plan.dir, canonical);
        let schema = plan.replications[0].schema.as_ref().unwrap();
        assert_eq!(schema.path, canonical.join("schema.sql"));
        assert_eq!(schema.sql, init::SEED_SCHEMA);
        // Same bytes, same fingerprint, wherever they come from.
        assert_eq!(plan.fingerprint, seed().fingerprint);
    }
}
