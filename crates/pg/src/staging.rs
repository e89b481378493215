//! Where a cluster is made before it is whole: a hidden sibling of its
//! final directory, renamed into place at the end (a rename within one
//! directory is atomic), so that an interrupted step never leaves half a
//! cluster where a whole one is expected.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};

/// `.NAME.WHAT-tmp` beside `dir`: the same filesystem, so the final rename
/// cannot fail for crossing one.
pub(crate) fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{what}-tmp"))
}

/// Moves `from` to `to`, or says which move failed.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|e| {
        Error::with(
            ErrorKind::Init,
            format!("moving {} to {}", from.display(), to.display()),
            e,
        )
    })
}
