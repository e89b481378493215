//! Each node's [`Checkpoint`] kept on disk (`DIR/NODE.json`, the daemon's
//! `<state>/pglog/`), so the next log reader goes on where this one
//! stopped. Written whole or not at all (a temporary file renamed over the
//! old one), owner-only like the rest of the lab's state.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::follow::Checkpoint;

fn file(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{node}.json"))
}

/// The node's checkpoint; `None` when there is none (or it cannot be
/// read: then the reader starts as on a first run, from the files written
/// from now on).
pub(crate) fn load(dir: &Path, node: &str) -> Option<Checkpoint> {
    let text = std::fs::read(file(dir, node)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Replaces the node's checkpoint atomically.
pub(crate) fn save(dir: &Path, node: &str, at: &Checkpoint) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let bytes = serde_json::to_vec(at).map_err(std::io::Error::other)?;
    model::write_atomic(&file(dir, node), &bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_comes_back_as_saved_and_a_bad_one_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let at = Checkpoint {
            path: "/x/postgresql-1.json".into(),
            inode: 7,
            offset: 42,
        };
        assert_eq!(load(dir.path(), "n1"), None);
        save(dir.path(), "n1", &at).unwrap();
        assert_eq!(load(dir.path(), "n1"), Some(at));
        std::fs::write(dir.path().join("n2.json"), "{half").unwrap();
        assert_eq!(load(dir.path(), "n2"), None);
    }
}
