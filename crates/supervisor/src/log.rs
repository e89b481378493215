//! Where a unit's stdout and stderr go: straight into its log file, or
//! through the supervisor into a log that rotates by size.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// How a unit's output reaches its log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    /// The log file *is* the child's stdout and stderr (appended, never
    /// rotated). The child keeps writing when the daemon dies, even by
    /// kill -9: what postgres nodes need, since they must outlive a daemon
    /// and be adopted by the next one.
    File,
    /// stdout and stderr are pipes the supervisor reads, line by line, into
    /// the log; when the next line would take it past `max_bytes` it becomes
    /// `NAME.log.1` (the older ones shift to `.2`…, `keep` are kept). A
    /// child that outpaces the writer blocks on its full pipe; nothing is
    /// dropped. The price: a child that writes after the daemon died gets
    /// EPIPE (or SIGPIPE), so such a unit does not survive a killed daemon —
    /// the next daemon stops whatever is left of it and starts it again.
    Rotated { max_bytes: u64, keep: u32 },
}

impl Default for LogMode {
    /// Rotated at 10 MiB, keeping 3 old files.
    fn default() -> Self {
        LogMode::Rotated {
            max_bytes: 10 << 20,
            keep: 3,
        }
    }
}

/// Sees every line a unit prints (in [`LogMode::Rotated`]), as it goes to
/// the log: the daemon counts services' lines by level with it. Called on
/// the pipe reader's path, so it must return at once: hand the line to a
/// bounded queue and drop (and count) when that is full, never wait.
pub type LineTap = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// A line is cut into pieces of this size at most, so one endless line
/// cannot hold the pipe reader's memory hostage.
const MAX_LINE: usize = 64 << 10;
/// Lines in flight between the pipe readers and the writer thread.
const QUEUE: usize = 256;

/// The unit task's end of the log.
pub(crate) enum LogSink {
    File(PathBuf),
    Rotated {
        path: PathBuf,
        tx: mpsc::Sender<Msg>,
        tap: Option<LineTap>,
    },
}

impl LogSink {
    /// For `Rotated`, starts the writer thread; it ends when the sink (and
    /// every pipe reader) is dropped, after writing what is queued. `tap`
    /// sees the child's lines (not the supervisor's notes); `File` mode has
    /// no pipe to see them on.
    pub(crate) fn open(path: &Path, mode: LogMode, tap: Option<LineTap>) -> LogSink {
        match mode {
            LogMode::File => LogSink::File(path.to_path_buf()),
            LogMode::Rotated { max_bytes, keep } => {
                let (tx, rx) = mpsc::channel(QUEUE);
                let mut log = RotatingLog::new(path.to_path_buf(), max_bytes, keep);
                let name = format!("log {}", path.display());
                // Its own thread: file I/O blocks, and must not stall the runtime.
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || log.drain(rx));
                if spawned.is_err() {
                    // No thread: fall back to the unrotated file rather than
                    // losing the output.
                    return LogSink::File(path.to_path_buf());
                }
                LogSink::Rotated {
                    path: path.to_path_buf(),
                    tx,
                    tap,
                }
            }
        }
    }

    /// (stdout, stderr) for the child.
    pub(crate) fn stdio(&self) -> std::io::Result<(Stdio, Stdio)> {
        match self {
            LogSink::File(path) => {
                let file = append(path)?;
                Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
            }
            LogSink::Rotated { path, .. } => {
                // Fail the start, as in File mode, when the log cannot be
                // written at all, rather than losing every line later.
                append(path)?;
                Ok((Stdio::piped(), Stdio::piped()))
            }
        }
    }

    /// Starts the pipe readers for a child spawned with [`LogSink::stdio`].
    pub(crate) fn attach(&self, child: &mut Child) -> Vec<JoinHandle<()>> {
        let LogSink::Rotated { tx, tap, .. } = self else {
            return Vec::new();
        };
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(pump(out, tx.clone(), tap.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(pump(err, tx.clone(), tap.clone())));
        }
        readers
    }

    /// A line of the supervisor's own, among the unit's.
    pub(crate) async fn note(&self, unit: &str, line: &str) {
        let text = format!("prodhome: {unit}: {line}\n");
        match self {
            LogSink::File(path) => {
                if let Ok(mut f) = append(path) {
                    let _ = f.write_all(text.as_bytes());
                }
            }
            LogSink::Rotated { tx, .. } => {
                let _ = tx.send(Msg::Line(text.into_bytes())).await;
            }
        }
    }
}

/// What the pipe readers and the supervisor hand the writer thread.
pub(crate) enum Msg {
    Line(Vec<u8>),
    /// Answered once every line queued before it is in the file.
    Sync(oneshot::Sender<()>),
}

impl LogSink {
    /// Waits for the pipe readers to reach end of file (the child and its
    /// group are gone) and for the writer to have written what they read, so
    /// a unit's exit is reported only once its last lines can be read back
    /// (the message of a service that failed to start quotes them). Gives up
    /// on stragglers after a while: a grandchild that left the group may
    /// hold a pipe open forever.
    pub(crate) async fn finish(&self, readers: Vec<JoinHandle<()>>) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for mut reader in readers {
            if timeout_at(deadline, &mut reader).await.is_err() {
                reader.abort();
            }
        }
        if let LogSink::Rotated { tx, .. } = self {
            let (done, written) = oneshot::channel();
            if tx.send(Msg::Sync(done)).await.is_ok() {
                let _ = timeout_at(deadline, written).await;
            }
        }
    }
}

/// Owner-only: a server's or service's output tells of the lab's data (its
/// queries, its errors), and only the lab's owner may read that.
fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Reads one pipe and queues its lines. When the queue is full it waits,
/// and so the child waits on its full pipe: backpressure, not loss. The
/// tap sees each line (or piece of an endless one) before it is queued.
async fn pump(pipe: impl AsyncRead + Unpin, tx: mpsc::Sender<Msg>, tap: Option<LineTap>) {
    let mut reader = BufReader::with_capacity(MAX_LINE, pipe);
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) if !buf.is_empty() => buf,
            _ => break,
        };
        let (take, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if complete || line.len() >= MAX_LINE {
            if let Some(tap) = &tap {
                tap(&line);
            }
            if tx.send(Msg::Line(std::mem::take(&mut line))).await.is_err() {
                return;
            }
        }
    }
    if !line.is_empty() {
        if let Some(tap) = &tap {
            tap(&line);
        }
        line.push(b'\n');
        let _ = tx.send(Msg::Line(line)).await;
    }
}

/// The log file and its rotated predecessors.
struct RotatingLog {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<BufWriter<File>>,
    size: u64,
}

impl RotatingLog {
    fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        RotatingLog {
            path,
            max_bytes,
            keep,
            file: None,
            size: 0,
        }
    }

    /// Writes everything that arrives, flushing whenever the queue runs dry
    /// and before it answers a [`Msg::Sync`].
    fn drain(&mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(msg) = rx.blocking_recv() {
            let mut next = Some(msg);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Line(line) => self.write(&line),
                    Msg::Sync(done) => {
                        self.flush();
                        let _ = done.send(());
                    }
                }
                next = rx.try_recv().ok();
            }
            self.flush();
        }
    }

    fn write(&mut self, line: &[u8]) {
        if self.file.is_none() {
            self.open();
        }
        // A file passes max_bytes only when one line alone is longer.
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate();
            self.open();
        }
        if let Some(file) = &mut self.file {
            if file.write_all(line).is_ok() {
                self.size += line.len() as u64;
            } else {
                // Disk full or the file vanished: try a fresh one next line.
                self.file = None;
            }
        }
    }

    fn flush(&mut self) {
        if let Some(file) = &mut self.file
            && file.flush().is_err()
        {
            self.file = None;
        }
    }

    fn open(&mut self) {
        if let Ok(file) = append(&self.path) {
            self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(BufWriter::new(file));
        }
    }

    /// NAME.log → NAME.log.1 → … → NAME.log.KEEP, the oldest dropped.
    fn rotate(&mut self) {
        self.flush();
        self.file = None;
        self.size = 0;
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        for i in (1..self.keep).rev() {
            let _ = std::fs::rename(numbered(&self.path, i), numbered(&self.path, i + 1));
        }
        let _ = std::fs::rename(&self.path, numbered(&self.path, 1));
    }
}

/// `NAME.log.N`.
pub(crate) fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The last `n` lines of the log, reaching into `NAME.log.1` when the
/// current file holds fewer.
pub(crate) fn tail(path: &Path, n: usize) -> Vec<String> {
    let mut lines = last_lines(path, n);
    if lines.len() < n {
        let mut older = last_lines(&numbered(path, 1), n - lines.len());
        older.append(&mut lines);
        lines = older;
    }
    lines
}

fn last_lines(path: &Path, n: usize) -> Vec<String> {
    // Lines are rarely long: 256 KiB from the end is plenty for an error
    // message, and a big log is not read whole.
    const WINDOW: u64 = 256 << 10;
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(WINDOW);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut mid-line
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|l| l.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_files_and_every_line_in_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut log = RotatingLog::new(path.clone(), 100, 2);
        // 10-byte lines, 10 per file: 35 lines fill svc.log.2 (lines 10..20),
        // svc.log.1 (20..30) and svc.log (30..35); lines 0..10 rotate out.
        for i in 0..35 {
            log.write(format!("line {i:04}\n").as_bytes());
        }
        log.flush();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&numbered(&path, 2)).lines().next(), Some("line 0010"));
        assert_eq!(read(&numbered(&path, 1)).lines().count(), 10);
        assert_eq!(read(&path).lines().last(), Some("line 0034"));
        assert!(!numbered(&path, 3).exists());
        assert_eq!(tail(&path, 7).first().map(String::as_str), Some("line 0028"));
    }
}
