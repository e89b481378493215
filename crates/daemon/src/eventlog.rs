//! The append-only event log, `events.jsonl`: one JSON Event a line.
//! One writer task drains the supervisor's bounded channel, appends, and
//! syncs after each batch; readers read the file.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use model::Event;
use tokio::sync::{mpsc, oneshot};

/// The writer's handle: flush before exit so no event is lost.
pub(crate) struct EventLog {
    flush: mpsc::Sender<oneshot::Sender<()>>,
}

impl EventLog {
    /// Starts the writer; returns the sender units emit into. Each event is
    /// also printed on stderr when `echo` is set, handed to `store` (for
    /// the dashboard's annotations and the sinks) when there is one, and
    /// offered to `tap` (the alerts) once it is on disk; a full tap drops,
    /// never blocks the log.
    pub(crate) fn start_with_tap(
        path: PathBuf,
        echo: bool,
        store: Option<store::Store>,
        tap: Option<mpsc::Sender<Event>>,
    ) -> (mpsc::Sender<Event>, EventLog) {
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let (flush, mut flushes) = mpsc::channel::<oneshot::Sender<()>>(4);
        tokio::spawn(async move {
            // 0600: what happened to the lab is the owner's to read.
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .ok();
            loop {
                tokio::select! {
                    biased;
                    Some(first) = rx.recv() => {
                        let mut batch = vec![first];
                        while let Ok(more) = rx.try_recv() {
                            batch.push(more);
                        }
                        append(file.as_mut(), &batch, echo);
                        forward(store.as_ref(), &batch);
                        offer(tap.as_ref(), &batch);
                    }
                    Some(done) = flushes.recv() => {
                        let mut batch = Vec::new();
                        while let Ok(more) = rx.try_recv() {
                            batch.push(more);
                        }
                        append(file.as_mut(), &batch, echo);
                        forward(store.as_ref(), &batch);
                        offer(tap.as_ref(), &batch);
                        let _ = done.send(());
                    }
                    else => return,
                }
            }
        });
        (tx, EventLog { flush })
    }

    /// Returns once every event sent before the call is on disk.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.flush.send(done).await.is_ok() {
            let _ = wait.await;
        }
    }
}

fn offer(tap: Option<&mpsc::Sender<Event>>, batch: &[Event]) {
    if let Some(tap) = tap {
        for event in batch {
            let _ = tap.try_send(event.clone());
        }
    }
}

fn forward(store: Option<&store::Store>, batch: &[Event]) {
    if let Some(store) = store {
        for event in batch {
            store.event(event.clone());
        }
    }
}

fn append(file: Option<&mut std::fs::File>, batch: &[Event], echo: bool) {
    let mut text = String::new();
    for event in batch {
        if echo {
            eprintln!("prodhome: {event}");
        }
        if let Ok(line) = serde_json::to_string(event) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    if let Some(f) = file
        && !text.is_empty()
    {
        let _ = f.write_all(text.as_bytes()).and_then(|_| f.sync_data());
    }
}

/// Events at or after `since_ns`, oldest first. A torn last line (the
/// daemon was killed mid-write) is skipped.
pub(crate) fn read(path: &Path, since_ns: i64) -> Vec<Event> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Event>(&line).ok())
        .filter(|e| e.ts_ns >= since_ns)
        .collect()
}
