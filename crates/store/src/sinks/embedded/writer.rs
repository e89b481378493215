//! The embedded store's writing side: one SQLite connection, points
//! encoded into one chunk per tag set per write (see `codec`), merged and
//! sealed once a minute, retention applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use model::{Event, FieldValue, Point};
use rusqlite::{Connection, params};

use super::tagsets::{TagSet, TagSets};
use super::{BUSY_TIMEOUT, EmbeddedOptions, MAX_SPAN, SCHEMA};
use crate::codec;
use crate::error::{Error, sqlite};
use crate::fxhash::BuildFx;

/// Most points in a sealed chunk.
const MAX_POINTS: usize = 1024;

/// The writer's page cache, in KiB: a batch touching many pages must not
/// spill them to the WAL mid-transaction.
const CACHE_KIB: i64 = 64 * 1024;

/// How often chunks are merged and retention runs; chunks younger than
/// this are left open.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

/// The writing side: owns the connection and caches tag set and field ids.
pub struct Writer {
    conn: Connection,
    path: PathBuf,
    retention: Duration,
    /// The tag sets seen, and how to find a point's.
    tagsets: TagSets,
    last_maintained: Instant,
}

/// A chunk being filled by one write.
struct Open {
    first: i64,
    last: i64,
    points: i64,
    data: Vec<u8>,
}

/// Creates the store's file owner-only (0600) before SQLite opens it:
/// SQLite gives its -wal and -shm files the mode of the database, so the
/// lab's metrics are never readable by other accounts.
fn create_private(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| Error::with(format!("creating the metrics store {}", path.display()), e))
}

impl Writer {
    /// Opens (creating when missing) the store at `opts.path`.
    pub fn open(opts: &EmbeddedOptions) -> Result<Writer, Error> {
        let path = opts.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::with(
                    format!("creating the directory of the metrics store {}", path.display()),
                    e,
                )
            })?;
        }
        create_private(&path)?;
        let conn = Connection::open(&path).map_err(|e| sqlite("opening", &path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite("setting the busy timeout", &path, e))?;
        // WAL: readers in other processes never block the writer; NORMAL
        // sync is durable across a process crash, which is what metrics need.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sqlite("switching to WAL mode", &path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| sqlite("setting synchronous", &path, e))?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(|e| sqlite("setting the cache size", &path, e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| sqlite("creating the tables", &path, e))?;
        let mut writer = Writer {
            conn,
            path,
            retention: opts.retention,
            tagsets: TagSets::default(),
            last_maintained: Instant::now(),
        };
        writer.prune()?;
        Ok(writer)
    }

    /// Writes points and events in one transaction.
    pub fn write<'a>(
        &mut self,
        points: impl IntoIterator<Item = &'a Point>,
        events: &[Event],
    ) -> Result<(), Error> {
        self.in_transaction(|w| w.insert_all(points, events))
    }

    /// True when [`Writer::maintain`] is due (the sink runs it once a
    /// minute).
    pub fn maintenance_due(&self) -> bool {
        self.last_maintained.elapsed() >= MAINTAIN_EVERY
    }

    /// Merges and seals chunks older than a minute, then applies retention.
    pub fn maintain(&mut self) -> Result<(), Error> {
        self.last_maintained = Instant::now();
        let cutoff = model::now_ns() - MAINTAIN_EVERY.as_nanos() as i64;
        self.in_transaction(|w| w.compact(cutoff))?;
        self.prune()
    }

    fn in_transaction(&mut self, work: impl FnOnce(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| sqlite("starting a transaction", &self.path, e))?;
        if let Err(e) = work(self) {
            let _ = self.conn.execute_batch("ROLLBACK");
            // Ids registered in the rolled-back transaction are gone:
            // forget the cache, it reloads from the store.
            self.tagsets.clear();
            return Err(e);
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| sqlite("committing", &self.path, e))
    }

    fn insert_all<'a>(
        &mut self,
        points: impl IntoIterator<Item = &'a Point>,
        events: &[Event],
    ) -> Result<(), Error> {
        let mut open: HashMap<i64, Open, BuildFx> = HashMap::default();
        let mut fields: Vec<(u16, &FieldValue)> = Vec::new();
        for point in points {
            fields.clear();
            let id = self.resolve(point, &mut fields)?;
            let chunk = open.entry(id).or_insert_with(|| Open {
                first: point.ts_ns,
                last: point.ts_ns,
                points: 0,
                data: Vec::new(),
            });
            let (first, last) = (chunk.first.min(point.ts_ns), chunk.last.max(point.ts_ns));
            if last - first > MAX_SPAN {
                // Too wide for readers to find: close it and start another.
                let full = std::mem::replace(
                    chunk,
                    Open {
                        first: point.ts_ns,
                        last: point.ts_ns,
                        points: 0,
                        data: Vec::new(),
                    },
                );
                insert_chunk(&self.conn, &self.path, id, &full, false)?;
            } else {
                (chunk.first, chunk.last) = (first, last);
            }
            codec::encode(point.ts_ns, &fields, &mut chunk.data);
            chunk.points += 1;
        }
        for (id, chunk) in &open {
            insert_chunk(&self.conn, &self.path, *id, chunk, false)?;
        }
        if !events.is_empty() {
            let mut stmt = self
                .conn
                .prepare_cached("INSERT INTO events (ts, unit, kind, json) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| sqlite("preparing an insert", &self.path, e))?;
            for event in events {
                let json = serde_json::to_string(event).unwrap_or_default();
                stmt.execute(params![event.ts_ns, event.unit, event.kind.name(), json])
                    .map_err(|e| sqlite("inserting an event", &self.path, e))?;
            }
        }
        Ok(())
    }

    /// The point's tag set id, registering it (and new fields) on first
    /// sight; fills `fields` with (field index, value).
    fn resolve<'p>(
        &mut self,
        point: &'p Point,
        fields: &mut Vec<(u16, &'p FieldValue)>,
    ) -> Result<i64, Error> {
        let index = match self.tagsets.find(point) {
            Some(i) => i,
            None => {
                let set = load_tagset(&self.conn, &self.path, point)?;
                self.tagsets.add(set)
            }
        };
        let set = &mut self.tagsets.sets[index];
        // Points of a tag set bring their fields in the same (sorted) order
        // each time, so the next field is usually the one after the last.
        let mut next = 0;
        for (name, value) in &point.fields {
            let found = match set.fields.get(next) {
                Some(f) if f == name => Some(next),
                _ => set.fields.iter().position(|f| f == name),
            };
            let idx = match found {
                Some(i) => i,
                None if set.fields.len() < u16::MAX as usize => {
                    let kind = match value {
                        FieldValue::I64(_) => "i",
                        FieldValue::F64(_) => "f",
                        FieldValue::Bool(_) => "b",
                        FieldValue::Str(_) => "s",
                    };
                    self.conn
                        .prepare_cached(
                            "INSERT INTO fields (tagset, idx, name, kind) VALUES (?1, ?2, ?3, ?4)",
                        )
                        .and_then(|mut s| s.execute(params![set.id, set.fields.len() as i64, name, kind]))
                        .map_err(|e| sqlite("registering a field", &self.path, e))?;
                    set.fields.push(name.clone());
                    set.fields.len() - 1
                }
                None => continue,
            };
            next = idx + 1;
            fields.push((idx as u16, value));
        }
        Ok(set.id)
    }

    /// Merges open chunks that ended before `cutoff`, per tag set: sorted
    /// by time, a repeated timestamp keeping its later point, cut into
    /// sealed chunks of at most MAX_POINTS points and MAX_SPAN.
    fn compact(&mut self, cutoff: i64) -> Result<(), Error> {
        let rows: Vec<(i64, i64, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT rowid, tagset, data FROM chunks WHERE sealed = 0 AND last_ts < ?1
                     ORDER BY tagset, first_ts, rowid",
                )
                .map_err(|e| sqlite("reading chunks to merge", &self.path, e))?;
            stmt.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| sqlite("reading chunks to merge", &self.path, e))?
        };
        let mut i = 0;
        while i < rows.len() {
            let tagset = rows[i].1;
            let mut points: Vec<(i64, &[u8])> = Vec::new();
            let mut rowids = Vec::new();
            while i < rows.len() && rows[i].1 == tagset {
                let data = &rows[i].2;
                points.extend(codec::split(data).into_iter().map(|(ts, r)| (ts, &data[r])));
                rowids.push(rows[i].0);
                i += 1;
            }
            // Stable: among equal timestamps the later write comes last.
            points.sort_by_key(|p| p.0);
            let mut kept: Vec<(i64, &[u8])> = Vec::with_capacity(points.len());
            for p in points {
                match kept.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => kept.push(p),
                }
            }
            for part in chunk_points(&kept) {
                let chunk = Open {
                    first: part[0].0,
                    last: part[part.len() - 1].0,
                    points: part.len() as i64,
                    data: part.iter().flat_map(|p| p.1.iter().copied()).collect(),
                };
                insert_chunk(&self.conn, &self.path, tagset, &chunk, true)?;
            }
            let mut delete = self
                .conn
                .prepare_cached("DELETE FROM chunks WHERE rowid = ?1")
                .map_err(|e| sqlite("merging chunks", &self.path, e))?;
            for rowid in rowids {
                delete
                    .execute(params![rowid])
                    .map_err(|e| sqlite("merging chunks", &self.path, e))?;
            }
        }
        Ok(())
    }

    /// Deletes chunks and events older than the retention.
    pub fn prune(&mut self) -> Result<(), Error> {
        let cutoff = model::now_ns().saturating_sub(self.retention.as_nanos().min(i64::MAX as u128) as i64);
        let conn = &self.conn;
        let delete = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            let ids: Vec<i64> = tx
                .prepare_cached("SELECT id FROM tagsets")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            // By tag set, so each delete is a range of the index rather
            // than a scan of the whole table.
            let mut stmt =
                tx.prepare_cached("DELETE FROM chunks WHERE tagset = ?1 AND first_ts < ?2 AND last_ts < ?2")?;
            for id in ids {
                stmt.execute(params![id, cutoff])?;
            }
            drop(stmt);
            tx.execute("DELETE FROM events WHERE ts < ?1", params![cutoff])?;
            tx.commit()
        };
        delete().map_err(|e| sqlite("deleting data older than the retention", &self.path, e))
    }
}

/// Cuts time-ordered points into runs of at most MAX_POINTS within MAX_SPAN.
fn chunk_points<'a, 'b>(points: &'b [(i64, &'a [u8])]) -> Vec<&'b [(i64, &'a [u8])]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..points.len() {
        if i - start == MAX_POINTS || points[i].0 - points[start].0 > MAX_SPAN {
            out.push(&points[start..i]);
            start = i;
        }
    }
    if start < points.len() {
        out.push(&points[start..]);
    }
    out
}

fn insert_chunk(
    conn: &Connection,
    path: &Path,
    tagset: i64,
    chunk: &Open,
    sealed: bool,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO chunks (tagset, first_ts, last_ts, points, sealed, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tagset,
            chunk.first,
            chunk.last,
            chunk.points,
            sealed as i64,
            chunk.data
        ])
    })
    .map(drop)
    .map_err(|e| sqlite("inserting a chunk", path, e))
}

/// The point's tag set from the store (registered when new), with the
/// fields it already has.
fn load_tagset(conn: &Connection, path: &Path, point: &Point) -> Result<TagSet, Error> {
    let tags = serde_json::to_string(&point.tags).unwrap_or_default();
    let node = point.tags.get("node").map(String::as_str).unwrap_or("");
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO tagsets (measurement, node, tags) VALUES (?1, ?2, ?3)
             ON CONFLICT (measurement, tags) DO UPDATE SET node = excluded.node RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![point.measurement, node, tags], |r| r.get(0)))
        .map_err(|e| sqlite("registering a series", path, e))?;
    let fields: Vec<String> = conn
        .prepare_cached("SELECT name FROM fields WHERE tagset = ?1 ORDER BY idx")
        .and_then(|mut s| s.query_map(params![id], |r| r.get(0))?.collect())
        .map_err(|e| sqlite("reading a series' fields", path, e))?;
    Ok(TagSet {
        measurement: point.measurement.clone(),
        tags: point.tags.clone(),
        id,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_cut_by_count_and_by_span() {
        let bytes: &[u8] = &[];
        let second = 1_000_000_000;
        let dense: Vec<(i64, &[u8])> = (0..2500).map(|i| (i * second / 10, bytes)).collect();
        assert_eq!(
            chunk_points(&dense).iter().map(|p| p.len()).collect::<Vec<_>>(),
            [1024, 1024, 452]
        );
        let steady: Vec<(i64, &[u8])> = (0..2000).map(|i| (i * second, bytes)).collect();
        assert_eq!(
            chunk_points(&steady).iter().map(|p| p.len()).collect::<Vec<_>>(),
            [901, 901, 198]
        );
        let sparse: Vec<(i64, &[u8])> = (0..4).map(|i| (i * 10 * 60 * second, bytes)).collect();
        assert_eq!(
            chunk_points(&sparse).iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 2]
        );
    }
}
