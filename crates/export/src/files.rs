//! The export's files and how they land on disk: every file written to a
//! temporary name beside it and renamed into place (a reader never sees a
//! half-written file), secrets at 0600, and a marker file so a second export
//! into the same directory knows the directory is its own.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::ExportError;

/// The file that says a directory holds an export (and of what).
pub const MARKER: &str = ".prodhome-export";

/// One file of an export, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: PathBuf,
    pub text: String,
    /// 0600 for anything holding a secret, 0644 otherwise.
    pub mode: u32,
    /// The uid and gid to own it: the account a container reads a secret
    /// file as (compose bind-mounts it as it is on the host).
    pub owner: Option<(u32, u32)>,
}

impl File {
    pub(crate) fn public(path: impl Into<PathBuf>, text: String) -> File {
        File {
            path: path.into(),
            text,
            mode: 0o644,
            owner: None,
        }
    }

    pub(crate) fn secret(path: impl Into<PathBuf>, text: String) -> File {
        File {
            path: path.into(),
            text,
            mode: 0o600,
            owner: None,
        }
    }

    pub(crate) fn owned_by(mut self, ids: (u32, u32)) -> File {
        self.owner = Some(ids);
        self
    }
}

/// Everything one export writes.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// `compose`, `stack` or `k8s`: written into the marker.
    pub kind: String,
    pub files: Vec<File>,
}

impl Bundle {
    /// The file at `path`, if the bundle has one (for tests and callers).
    pub fn file(&self, path: &str) -> Option<&File> {
        self.files.iter().find(|f| f.path == Path::new(path))
    }

    /// Writes every file under `dir` (created if missing). A non-empty
    /// `dir` without the marker is refused unless `force`. Returns the
    /// paths written, in order.
    pub fn write(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, ExportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ExportError::Io { path, source }
        };
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                let non_empty = entries.next().is_some();
                if non_empty && !force && !dir.join(MARKER).is_file() {
                    return Err(ExportError::NotOurs { dir: dir.into() });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            Err(e) => return Err(io(dir)(e)),
        }
        // The directory of secret files is its owner's alone.
        let secrets = dir.join("secrets");
        if self.files.iter().any(|f| f.path.starts_with("secrets")) {
            std::fs::create_dir_all(&secrets).map_err(io(&secrets))?;
            std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&secrets))?;
        }
        let marker = File::public(MARKER, format!("{}\n", self.kind));
        let mut written = Vec::new();
        for file in self.files.iter().chain([&marker]) {
            let path = dir.join(&file.path);
            model::write_atomic(&path, file.text.as_bytes(), file.mode).map_err(io(&path))?;
            if let Some((uid, gid)) = file.owner {
                chown(&path, uid, gid).map_err(io(&path))?;
            }
            written.push(path);
        }
        Ok(written)
    }
}

/// Gives `path` to the container's account; an account that may not
/// (not root) keeps the file its own: containers then cannot read it, so
/// export as root (as `up` runs servers) or chown the files to that account.
fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    match std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}
