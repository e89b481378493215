//! The logs `prodhome logs` reads: a text file (the supervisor's file of a
//! unit, followed through truncation) or a node's jsonlog directory
//! (followed through rotation and restarts by `pglog`, each record printed
//! as the stderr format shows it).

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use super::filter::rank;

/// One message: its text (whole lines) and its level when known.
pub(crate) struct Entry {
    pub(crate) text: Vec<u8>,
    pub(crate) level: Option<usize>,
}

pub(crate) enum Source {
    Text(Tail),
    Json(pglog::Follower),
}

impl Source {
    pub(crate) fn text(path: PathBuf) -> Source {
        Source::Text(Tail {
            file: std::fs::File::open(&path).ok(),
            path,
            partial: Vec::new(),
        })
    }

    /// A node's jsonlog directory, every file in it (the oldest first).
    pub(crate) fn json(dir: &Path) -> Source {
        Source::Json(pglog::Follower::new(dir, ".json", SystemTime::UNIX_EPOCH))
    }

    /// True when there is something to read (the file, the directory).
    pub(crate) fn exists(&self, path: &Path) -> bool {
        match self {
            Source::Text(t) => t.file.is_some(),
            Source::Json(_) => path.is_dir(),
        }
    }

    /// What was written since the last call.
    pub(crate) fn entries(&mut self) -> Result<Vec<Entry>> {
        match self {
            Source::Text(tail) => tail.lines(),
            Source::Json(follower) => {
                let mut out = Vec::new();
                follower.poll(16 << 20, |line| out.push(render(line)))?;
                Ok(out)
            }
        }
    }
}

fn render(line: &str) -> Entry {
    match pglog::Record::parse(line) {
        Ok(r) => Entry {
            level: rank(&r.error_severity),
            text: r.to_text().into_bytes(),
        },
        Err(_) => Entry {
            text: format!("{line}\n").into_bytes(),
            level: None,
        },
    }
}

/// One text log being read: whole lines are returned; a line still being
/// written waits for its end.
pub(crate) struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl Tail {
    fn lines(&mut self) -> Result<Vec<Entry>> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        let pos = file.stream_position()?;
        if std::fs::metadata(&self.path)
            .map(|m| m.len() < pos)
            .unwrap_or(false)
        {
            // Rotated or truncated: start again from the top of the new file.
            *file = std::fs::File::open(&self.path)?;
        }
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        self.partial.extend_from_slice(&chunk);
        let mut out = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let text: Vec<u8> = self.partial.drain(..=end).collect();
            out.push(Entry { text, level: None });
        }
        Ok(out)
    }
}
