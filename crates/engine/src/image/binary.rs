//! A service's own program packed into a tiny image: the executable at
//! `/usr/local/bin/NAME` (its entrypoint), every library `ldd` names for it
//! (added at build time by the parent's `add_libraries`, like the Postgres
//! image's), a static busybox as `/bin/sh`, and passwd/group, run as
//! `nobody`. The tag hashes the binary's size and mtime with the rest, so a
//! rebuilt program gets a new image and an unchanged one is found cached.

use std::path::Path;

use super::entries::{self, Entries, Owner};
use super::{LIB_PATH, accounts, base_root};
use crate::EngineError;

/// Where the packed program lives in the image.
pub(super) const BIN_DIR: &str = "/usr/local/bin";

/// The account a packed service runs as.
const NOBODY: Owner = Owner {
    uid: 65534,
    gid: 65534,
};

/// The program's name in the image: its file name.
pub(super) fn program_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The tag's prefix: the program's name, in the characters a tag allows.
pub(super) fn tag_prefix(path: &Path) -> String {
    let name: String = program_name(path)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() { "bin".into() } else { name }
}

/// The image's entries and the import's changes for the program at `path`.
pub(super) fn entries(path: &Path, state_dir: Option<&str>) -> Result<(Entries, Vec<String>), EngineError> {
    let name = program_name(path);
    // A missing or unreadable program is the packer's error, naming it.
    entries::stamp(path)?;
    let mut entries = Entries::default();
    entries.host_file(format!("{BIN_DIR}/{name}"), path);
    // passwd keeps the host's postgres uid for a volume's files, as in the
    // Postgres image; a service runs as nobody, a program with a state
    // directory (the controller) as that account, which owns it.
    let owner = accounts::postgres_owner().unwrap_or(NOBODY);
    base_root(&mut entries, owner)?;
    let user = match state_dir {
        Some(dir) => {
            state_directory(&mut entries, dir, owner);
            owner
        }
        None => NOBODY,
    };
    let changes = vec![
        format!("USER {}:{}", user.uid, user.gid),
        format!("ENV PATH={BIN_DIR}:/usr/bin:/bin"),
        format!("ENV LD_LIBRARY_PATH={LIB_PATH}"),
        format!("ENTRYPOINT [\"{BIN_DIR}/{name}\"]"),
        "LABEL prodhome.image=service".into(),
    ];
    Ok((entries, changes))
}

/// `dir` and its parents (root's, 0755), `dir` itself `owner`'s and 0700.
fn state_directory(entries: &mut Entries, dir: &str, owner: Owner) {
    let mut parent = String::new();
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        parent.push('/');
        parent.push_str(part);
        if i + 1 < parts.len() {
            entries.dir(&parent, 0o755, super::ROOT);
        }
    }
    entries.dir(dir, 0o700, owner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_prefix_keeps_only_what_a_tag_allows() {
        assert_eq!(tag_prefix(Path::new("/usr/bin/dispatcher")), "dispatcher");
        assert_eq!(tag_prefix(Path::new("/opt/my app+x")), "my_app_x");
        assert_eq!(tag_prefix(Path::new("/")), "bin");
    }

    #[test]
    fn the_program_is_the_entrypoint_and_runs_as_nobody() {
        let Ok((entries, changes)) = entries(Path::new("/bin/busybox"), None) else {
            return; // no busybox-static here: the Postgres image needs it too
        };
        assert!(entries.map.contains_key(Path::new("/usr/local/bin/busybox")));
        assert!(
            entries.map.contains_key(Path::new("/bin")),
            "the merged-/usr links"
        );
        assert!(changes.contains(&"USER 65534:65534".to_string()), "{changes:?}");
        assert!(
            changes
                .iter()
                .any(|c| c == "ENTRYPOINT [\"/usr/local/bin/busybox\"]")
        );
    }

    #[test]
    fn a_state_directory_is_made_for_the_account_it_runs_as() {
        let Ok((entries, changes)) = entries(Path::new("/bin/busybox"), Some("/var/lib/prodhome")) else {
            return; // no busybox-static here, as above
        };
        let owner = accounts::postgres_owner().unwrap_or(NOBODY);
        match &entries.map[Path::new("/var/lib/prodhome")] {
            entries::Entry::Dir { mode, owner: o } => {
                assert_eq!((*mode, o.uid), (0o700, owner.uid));
            }
            other => panic!("not a directory: {other:?}"),
        }
        assert!(entries.map.contains_key(Path::new("/var/lib")));
        let user = format!("USER {}:{}", owner.uid, owner.gid);
        assert!(changes.contains(&user), "{changes:?}");
    }

    #[test]
    fn a_missing_program_names_itself() {
        let err = entries(Path::new("/nonexistent/app"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/app"), "{err}");
    }
}
