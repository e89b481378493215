//! What goes into an image, as a flat list of entries with explicit owners
//! and modes: the host's files are read, never trusted for their ownership
//! (a tar of host modes was what broke `/var/run/postgresql` before).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::EngineError;

/// Owner of an entry in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

pub(crate) const ROOT: Owner = Owner { uid: 0, gid: 0 };

/// One entry of the image's root file system.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Dir {
        mode: u32,
        owner: Owner,
    },
    /// A host file copied in (symlinks followed), with the host's mtime.
    File {
        source: PathBuf,
        mode: u32,
    },
    /// A file written from memory (passwd, group).
    Data {
        bytes: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
    },
}

/// The image's entries by their absolute path inside the image; a
/// `BTreeMap` so parents come before children and the order is stable.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    pub(crate) map: BTreeMap<PathBuf, Entry>,
}

impl Entries {
    /// Adds `entry` at `path` and a root-owned 0755 directory for every
    /// parent not already there.
    pub(crate) fn add(&mut self, path: impl Into<PathBuf>, entry: Entry) {
        let path = path.into();
        for parent in path.ancestors().skip(1) {
            if parent == Path::new("/") || parent.as_os_str().is_empty() {
                break;
            }
            self.map.entry(parent.to_owned()).or_insert(Entry::Dir {
                mode: 0o755,
                owner: ROOT,
            });
        }
        self.map.insert(path, entry);
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32, owner: Owner) {
        self.add(path, Entry::Dir { mode, owner });
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        self.add(
            path,
            Entry::Symlink {
                target: target.into(),
            },
        );
    }

    pub(crate) fn data(&mut self, path: &str, bytes: Vec<u8>) {
        self.add(path, Entry::Data { bytes, mode: 0o644 });
    }

    /// Copies the host's tree at `root` to the same path in the image, every
    /// entry root-owned, skipping file names for which `skip` is true.
    pub(crate) fn tree(&mut self, root: &Path, skip: &dyn Fn(&str) -> bool) -> Result<(), EngineError> {
        let pack_err = |path: &Path| {
            let path = path.to_owned();
            move |source| EngineError::Pack { path, source }
        };
        let mut pending = vec![root.to_owned()];
        while let Some(path) = pending.pop() {
            let meta = std::fs::symlink_metadata(&path).map_err(pack_err(&path))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(pack_err(&path))?;
                self.add(path, Entry::Symlink { target });
            } else if meta.is_dir() {
                for child in std::fs::read_dir(&path).map_err(pack_err(&path))? {
                    let child = child.map_err(pack_err(&path))?;
                    if !skip(&child.file_name().to_string_lossy()) {
                        pending.push(child.path());
                    }
                }
                self.add(
                    path,
                    Entry::Dir {
                        mode: 0o755,
                        owner: ROOT,
                    },
                );
            } else if meta.is_file() {
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                self.add(path.clone(), Entry::File { source: path, mode });
            }
        }
        Ok(())
    }

    /// Adds a host file (symlinks followed) at `path`, executable.
    pub(crate) fn host_file(&mut self, path: impl Into<PathBuf>, source: &Path) {
        let entry = Entry::File {
            source: source.to_owned(),
            mode: 0o755,
        };
        self.add(path, entry);
    }

    /// The host files copied in, for `ldd` and the content hash.
    pub(crate) fn host_files(&self) -> impl Iterator<Item = &Path> {
        self.map.values().filter_map(|entry| match entry {
            Entry::File { source, .. } => Some(source.as_path()),
            _ => None,
        })
    }
}

/// Size and mtime of a host file, following symlinks: what the content hash
/// covers for it.
pub(crate) fn stamp(path: &Path) -> Result<(u64, i64, i64), EngineError> {
    let meta = std::fs::metadata(path).map_err(|source| EngineError::Pack {
        path: path.to_owned(),
        source,
    })?;
    Ok((meta.size(), meta.mtime(), meta.mtime_nsec()))
}
