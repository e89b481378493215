//! squawk, the static migration linter, when it is on PATH: its warnings
//! for the file go beside the measured impact.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub(crate) struct Lint {
    pub(crate) installed: bool,
    /// One line each, as squawk's gcc reporter prints them (FILE:LINE:COL: warning: RULE text),
    /// lines and columns counted from 1.
    pub(crate) warnings: Vec<String>,
    /// Why there are no warnings to show, when that needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// Lints `file`; for a command (no file) there is nothing to lint.
pub(crate) fn lint(file: Option<&Path>) -> Lint {
    let Some(file) = file else {
        return Lint {
            installed: which(),
            warnings: Vec::new(),
            note: Some("squawk lints a SQL file; a command's migrations were not linted".into()),
        };
    };
    let out = match Command::new("squawk")
        .arg("--reporter")
        .arg("gcc")
        .arg(file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Lint {
                installed: false,
                warnings: Vec::new(),
                note: Some(
                    "squawk is not installed, so no static warnings: `pip install squawk-cli` puts it on PATH".into(),
                ),
            };
        }
        Err(e) => {
            return Lint {
                installed: true,
                warnings: Vec::new(),
                note: Some(format!("running squawk on {} failed: {e}", file.display())),
            };
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let warnings: Vec<String> = text
        .lines()
        .filter(|l| l.contains(": warning:") || l.contains(": error:"))
        .map(one_based)
        .collect();
    // squawk exits 1 when it warns; anything else without warnings is its own failure.
    let note = (warnings.is_empty() && !out.status.success()).then(|| {
        format!(
            "squawk failed on {} ({}): {}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    });
    Lint {
        installed: true,
        warnings,
        note,
    }
}

/// squawk's gcc reporter counts lines and columns from 0; prodhome's
/// messages (and editors) from 1.
fn one_based(line: &str) -> String {
    let mut parts = line.splitn(4, ':');
    let (Some(file), Some(l), Some(c), Some(rest)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return line.to_string();
    };
    match (l.parse::<u64>(), c.parse::<u64>()) {
        (Ok(l), Ok(c)) => format!("{file}:{}:{}:{rest}", l + 1, c + 1),
        _ => line.to_string(),
    }
}

fn which() -> bool {
    Command::new("squawk")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    #[test]
    fn squawk_positions_count_from_one() {
        assert_eq!(
            super::one_based("x.sql:0:0: warning: require-lock-timeout Missing"),
            "x.sql:1:1: warning: require-lock-timeout Missing"
        );
        assert_eq!(super::one_based("odd line"), "odd line");
    }
}
