//! Following a node's log directory: the collector writes one file at a
//! time (`postgresql-YYYYMMDD-HHMMSS.json`, names in time order) and starts
//! a new one on rotation and on every server start. The follower keeps the
//! file it reads and its offset; it moves to the next file only after
//! reading the current one to its end once more after the next file
//! appeared (the collector opens the new file before it stops writing the
//! old), and once nothing has written to it for a second (after a crash,
//! the dead server's collector may still be draining into the old file
//! while the new server's writes the next), so no line is lost on
//! rotation or restart.
//!
//! Where it stopped is a [`Checkpoint`] (file, inode, offset after the
//! last whole line handed over) that [`Follower::resume`] starts from, so
//! a reader that stops and starts again (a daemon restart) goes on at the
//! next line: nothing read twice, nothing skipped. A checkpointed file that
//! is gone counts as read to its end; one replaced under its name (another
//! inode) or cut shorter is read from its start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Where a follower stopped: the next line starts at `offset` of `path`,
/// the file whose inode is `inode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub inode: u64,
    pub offset: u64,
}

/// Where the follower is.
struct Position {
    path: PathBuf,
    inode: u64,
    offset: u64,
}

/// Reads the whole lines added to a directory of log files.
pub struct Follower {
    dir: PathBuf,
    suffix: String,
    since: SystemTime,
    at: Option<Position>,
    partial: Vec<u8>,
}

impl Follower {
    /// Follows the files of `dir` ending in `suffix` (`.json`), from the
    /// first one written at or after `since` (older ones are history).
    pub fn new(dir: &Path, suffix: &str, since: SystemTime) -> Follower {
        Follower {
            dir: dir.to_path_buf(),
            suffix: suffix.to_string(),
            since,
            at: None,
            partial: Vec::new(),
        }
    }

    /// Follows `dir` from `at`, a [`Follower::checkpoint`] of an earlier
    /// follower of it.
    pub fn resume(dir: &Path, suffix: &str, at: Checkpoint) -> Follower {
        let mut follower = Follower::new(dir, suffix, SystemTime::UNIX_EPOCH);
        follower.at = Some(Position {
            path: at.path,
            inode: at.inode,
            offset: at.offset,
        });
        follower
    }

    /// The file being read and the offset reached in it.
    pub fn position(&self) -> Option<(&Path, u64)> {
        self.at.as_ref().map(|p| (p.path.as_path(), p.offset))
    }

    /// Where the next whole line starts: after every line handed over so
    /// far (a half-written line is read again from its start).
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.at.as_ref().map(|p| Checkpoint {
            path: p.path.clone(),
            inode: p.inode,
            offset: p.offset - self.partial.len() as u64,
        })
    }

    /// Hands every whole new line (without its newline) to `line`, reading
    /// at most about `budget` bytes; returns the bytes read. A missing
    /// directory is no error: the server may not have started yet.
    pub fn poll(&mut self, budget: u64, mut line: impl FnMut(&str)) -> std::io::Result<u64> {
        let mut read = 0;
        loop {
            if self.at.is_none() {
                let Some(first) = self.files()?.into_iter().find(|f| self.is_recent(f)) else {
                    return Ok(read);
                };
                self.open_at(first, 0)?;
            }
            let got = self.read_current(budget.saturating_sub(read), &mut line)?;
            read += got;
            if read >= budget {
                return Ok(read);
            }
            // At the end of the current file: is there a next one?
            let current = self.at.as_ref().map(|p| p.path.clone()).unwrap_or_default();
            let Some(next) = self.files()?.into_iter().find(|f| *f > current) else {
                return Ok(read);
            };
            // After a crash the old server's collector may still be writing
            // its last lines here while the new server's has opened the
            // next file: move on only once this one has been left alone.
            if !idle(&current) {
                return Ok(read);
            }
            // The collector no longer writes the current file: read what
            // it wrote before it switched, then move on.
            read += self.read_current(u64::MAX, &mut line)?;
            if !self.partial.is_empty() {
                let rest = std::mem::take(&mut self.partial);
                line(String::from_utf8_lossy(&rest).trim_end());
            }
            self.open_at(next, 0)?;
        }
    }

    fn is_recent(&self, path: &Path) -> bool {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= self.since)
    }

    fn open_at(&mut self, path: PathBuf, offset: u64) -> std::io::Result<()> {
        let inode = std::fs::metadata(&path).map(|m| m.ino()).unwrap_or(0);
        self.partial.clear();
        self.at = Some(Position { path, inode, offset });
        Ok(())
    }

    /// Reads the current file from its offset; a file truncated or
    /// replaced under the same name is read again from its start.
    fn read_current(&mut self, budget: u64, line: &mut impl FnMut(&str)) -> std::io::Result<u64> {
        let Some(at) = self.at.as_mut() else { return Ok(0) };
        let mut file = match File::open(&at.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if meta.ino() != at.inode || meta.len() < at.offset {
            at.inode = meta.ino();
            at.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(at.offset))?;
        let mut chunk = Vec::new();
        let got = file.take(budget).read_to_end(&mut chunk)? as u64;
        at.offset += got;
        self.partial.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(&self.partial[start..start + end]);
            line(&text);
            start += end + 1;
        }
        self.partial.drain(..start);
        Ok(got)
    }

    /// The log files, oldest first (their names carry the time).
    fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(&self.suffix)))
            .collect();
        files.sort();
        Ok(files)
    }
}

/// A file is left for the next one once nothing was written to it for this
/// long (a rotation's old file is idle at once; a crashed server's
/// collector drains its pipe within milliseconds).
const IDLE_BEFORE_NEXT: Duration = Duration::from_secs(1);

/// True when `path` was last written at least [`IDLE_BEFORE_NEXT`] ago,
/// or is gone.
fn idle(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_or(true, |t| t.elapsed().is_ok_and(|age| age >= IDLE_BEFORE_NEXT))
}
