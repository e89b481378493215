//! Finding the server binaries of the pinned major version.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, ErrorKind};

/// A directory holding `postgres`, `initdb` and `psql` of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub bindir: PathBuf,
    /// The full version, e.g. "15.18".
    pub version: String,
}

impl Binaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// `psql`: beside the server when it is there, else the one on PATH.
    pub fn psql(&self) -> PathBuf {
        let own = self.tool("psql");
        if own.exists() { own } else { PathBuf::from("psql") }
    }
}

/// Looks for PostgreSQL `major` in `$PRODHOME_PG_BINDIR`, Debian's
/// `/usr/lib/postgresql/MAJOR/bin`, `pg_config --bindir`, then `$PATH`.
pub fn find_binaries(major: u32) -> Result<Binaries, Error> {
    let mut fixed: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("PRODHOME_PG_BINDIR") {
        fixed.push(dir.into());
    }
    fixed.push(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")));
    fixed.push(PathBuf::from(format!("/usr/pgsql-{major}/bin")));
    // pg_config (on Debian a shell script) runs only when the usual places
    // did not answer: it costs tens of milliseconds on every command.
    let asked = std::iter::once_with(pg_config_bindir).flatten();
    let path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let candidates = fixed.into_iter().chain(asked).chain(path);
    let mut wrong = Vec::new();
    for dir in candidates {
        if !dir.join("postgres").is_file() || !dir.join("initdb").is_file() {
            continue;
        }
        match version_of(&dir) {
            Some(v) if major_of(&v) == Some(major) => {
                return Ok(Binaries {
                    bindir: dir,
                    version: v,
                });
            }
            Some(v) => wrong.push(format!("{} is {v}", dir.display())),
            None => {}
        }
    }
    let found = if wrong.is_empty() {
        "no PostgreSQL server binaries were found".to_string()
    } else {
        format!("found only other versions ({})", wrong.join(", "))
    };
    Err(Error::new(
        ErrorKind::Binaries,
        format!(
            "the lab pins PostgreSQL {major}, but {found}. Install it (apt-get install postgresql-{major}), \
             set PRODHOME_PG_BINDIR to its bin directory, or change postgres_version in the lab file"
        ),
    ))
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn version_of(dir: &Path) -> Option<String> {
    let out = Command::new(dir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(2).map(str::to_string)
}

fn major_of(version: &str) -> Option<u32> {
    version.split(['.', 'b', 'r']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_of_release_and_beta() {
        assert_eq!(major_of("15.18"), Some(15));
        assert_eq!(major_of("17beta1"), Some(17));
        assert_eq!(major_of("garbage"), None);
    }
}
