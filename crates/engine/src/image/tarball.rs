//! Writing [`Entries`] as a tar stream into the engine's import: the tar is
//! written on a blocking thread into a channel the HTTP body reads from, so
//! ~90 MB never sits in memory at once.

use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::entries::{Entries, Entry, ROOT};
use crate::EngineError;

/// Chunks of about this size go over the channel.
const CHUNK: usize = 256 * 1024;

/// The body stream the engine reads, and the thread writing it; the thread
/// returns the number of bytes written.
pub(crate) type Packing = (
    mpsc::Receiver<Result<Bytes, io::Error>>,
    tokio::task::JoinHandle<Result<u64, EngineError>>,
);

/// Starts writing `entries` as a tar; read the receiver to the end, then
/// join the handle for the packer's own error, if any.
pub(crate) fn start(entries: Entries) -> Packing {
    let (tx, rx) = mpsc::channel(8);
    let handle = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            total: 0,
        };
        let result = write_all(&entries, &mut writer).and_then(|()| {
            writer
                .flush()
                .map_err(|source| pack_error(Path::new("(stream)"), source))?;
            Ok(writer.total)
        });
        if let Err(e) = &result {
            // Make the engine's import fail too, rather than import half a root.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
        result
    });
    (rx, handle)
}

fn write_all(entries: &Entries, writer: &mut ChannelWriter) -> Result<(), EngineError> {
    let mut tar = tar::Builder::new(writer);
    for (path, entry) in &entries.map {
        let inner = path.strip_prefix("/").unwrap_or(path);
        append(&mut tar, inner, entry).map_err(|source| pack_error(path, source))?;
    }
    tar.finish()
        .map_err(|source| pack_error(Path::new("(end of tar)"), source))
}

fn append(tar: &mut tar::Builder<&mut ChannelWriter>, path: &Path, entry: &Entry) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_uid(ROOT.uid.into());
    header.set_gid(ROOT.gid.into());
    header.set_mtime(0);
    match entry {
        Entry::Dir { mode, owner } => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(*mode);
            header.set_uid(owner.uid.into());
            header.set_gid(owner.gid.into());
            header.set_size(0);
            tar.append_data(&mut header, path, io::empty())
        }
        Entry::File { source, mode } => {
            let file = std::fs::File::open(source)?;
            let meta = file.metadata()?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(*mode);
            header.set_size(meta.len());
            header.set_mtime(std::os::unix::fs::MetadataExt::mtime(&meta).max(0) as u64);
            tar.append_data(&mut header, path, file)
        }
        Entry::Data { bytes, mode } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(*mode);
            header.set_size(bytes.len() as u64);
            tar.append_data(&mut header, path, bytes.as_slice())
        }
        Entry::Symlink { target } => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, path, target)
        }
    }
}

fn pack_error(path: &Path, source: io::Error) -> EngineError {
    EngineError::Pack {
        path: path.to_owned(),
        source,
    }
}

/// A `Write` that hands full chunks to the async side.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    total: u64,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.total += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading the image"))
    }
}
