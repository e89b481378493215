//! The ledger of acknowledged writes: one line `table<TAB>key` per write
//! whose COMMIT the server acknowledged, appended to a file and fsync'd in
//! batches (every 100 ms), so a later check can prove that every write the
//! database acknowledged is still there.
//!
//! A write enters the ledger only after its commit was acknowledged; a
//! crash of hum may lose the last batch from the ledger (never a write from
//! the database), so the ledger is always a subset of what was committed.
//! What is recorded: books inserts and updates by `id`; tpcb the account each
//! transaction updated (`pgbench_accounts`, `aid`; pgbench_history has no
//! key); scripts nothing (hum cannot know their keys).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub table: String,
    pub key: String,
}

/// Every entry of the ledger at `path`, in the order written. A last line
/// without its newline (hum was killed mid-write) is not an entry.
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    let file = File::open(path)?;
    let mut reader = io::BufReader::new(file);
    let mut entries = Vec::new();
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        number += 1;
        let Some(text) = line.strip_suffix('\n') else {
            break; // torn final write
        };
        let Some((table, key)) = text.split_once('\t') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}:{number}: not a ledger line (table<TAB>key): {text:?}",
                    path.display()
                ),
            ));
        };
        entries.push(Entry {
            table: table.to_string(),
            key: key.to_string(),
        });
    }
    Ok(entries)
}

/// The writing side, shared by every client of a run.
pub(crate) struct Ledger {
    path: PathBuf,
    /// Lines not yet written; clients append, the flusher swaps it out.
    pending: Mutex<Vec<u8>>,
    file: Mutex<File>,
    entries: AtomicU64,
}

impl Ledger {
    /// Opens (creating, 0600: the writes are the lab's data, the owner's
    /// alone) `path` for appending.
    pub(crate) fn open(path: &Path) -> io::Result<Ledger> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Ledger {
            path: path.to_path_buf(),
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            file: Mutex::new(file),
            entries: AtomicU64::new(0),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records acknowledged writes (kept in memory until the next flush).
    pub(crate) fn record(&self, writes: &[(&'static str, i64)]) {
        if writes.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (table, key) in writes {
            // Keys are integers and tables plain names: no tab or newline.
            let _ = writeln!(pending, "{table}\t{key}");
        }
        self.entries.fetch_add(writes.len() as u64, Ordering::Relaxed);
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Writes what is pending and fsyncs. Blocking: call from a blocking
    /// thread. Lines that could not be written stay pending for the next try.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let result = file.write_all(&batch).and_then(|()| file.sync_data());
        if result.is_err() {
            // Put the batch back in front of what came since. A partial
            // write may duplicate lines on retry: harmless for a ledger of
            // writes that must exist.
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::replace(&mut *pending, batch);
            pending.extend_from_slice(&newer);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let ledger = Ledger::open(&path).unwrap();
        ledger.record(&[("books", 7), ("books", 9)]);
        ledger.flush().unwrap();
        ledger.record(&[("pgbench_accounts", 42)]);
        ledger.flush().unwrap();
        assert_eq!(ledger.entries(), 3);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"books\t1").unwrap(); // killed mid-write
        let entries = read(&path).unwrap();
        let keys: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.table.as_str(), e.key.as_str()))
            .collect();
        assert_eq!(keys, [("books", "7"), ("books", "9"), ("pgbench_accounts", "42")]);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        std::fs::write(&path, "books\t1\nnonsense\n").unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.to_string().contains(":2: not a ledger line"), "{e}");
    }
}
