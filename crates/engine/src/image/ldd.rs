//! The shared libraries a set of binaries loads, as `ldd` names them: one
//! `ldd` run for all of them, so that checking the image cache stays fast.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::EngineError;

/// Every library path `ldd` prints for `binaries` (the dynamic loader
/// included), skipping files `ldd` says are not dynamic executables.
pub(crate) fn libraries(binaries: &[&Path]) -> Result<BTreeSet<PathBuf>, EngineError> {
    if binaries.is_empty() {
        return Ok(BTreeSet::new());
    }
    let first = binaries[0].to_owned();
    let out = Command::new("ldd")
        .args(binaries)
        .output()
        .map_err(|e| EngineError::Ldd {
            binary: first.clone(),
            message: e.to_string(),
        })?;
    // ldd exits 1 when any argument is not dynamic (a script, a static
    // busybox); the text still names every library of the others.
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `ldd`'s output for several files (`file:` headers, then lines
/// `name => /path (0x...)` or `/lib64/ld-linux... (0x...)`).
pub(crate) fn parse(text: &str) -> Result<BTreeSet<PathBuf>, EngineError> {
    let mut libs = BTreeSet::new();
    let mut current = PathBuf::new();
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            current = PathBuf::from(line.trim_end_matches(':'));
            continue;
        }
        let line = line.trim();
        if line.contains("=> not found") {
            return Err(EngineError::Ldd {
                binary: current,
                message: format!("a library is missing: {line}"),
            });
        }
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libs.insert(PathBuf::from(path));
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_files_and_the_loader() {
        let text = "/usr/bin/a:\n\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n/bin/busybox:\n\tnot a dynamic executable\n";
        let libs = parse(text).unwrap();
        let libs: Vec<_> = libs.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert_eq!(
            libs,
            ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
        );
    }

    #[test]
    fn a_missing_library_is_an_error_naming_the_binary() {
        let text = "/usr/bin/a:\n\tlibgone.so.1 => not found\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("/usr/bin/a") && err.contains("libgone.so.1"),
            "{err}"
        );
    }
}
