//! Reading the embedded store back: series over a time range, downsampled
//! to a step, and events. Used by the dashboard and `prodhome metrics`,
//! from the daemon or from another process (WAL mode lets readers run
//! beside the writer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::Event;
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;

use crate::codec::{self, Value};
use crate::error::{Error, sqlite};
use crate::sinks::embedded::{BUSY_TIMEOUT, MAX_SPAN};

/// One series: a measurement, its tags, one field, and its samples as
/// (timestamp ns, value), oldest first. Integers and booleans read as
/// numbers; string fields are not series and are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub field: String,
    pub points: Vec<(i64, f64)>,
}

/// A measurement in the store and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measurement {
    pub name: String,
    pub fields: Vec<String>,
    /// How many series (tag set x field) it has.
    pub series: usize,
}

/// A read-only connection to the store, for callers that query often.
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

impl Reader {
    /// Opens the store at `db`; fails with what to do when there is none.
    pub fn open(db: &Path) -> Result<Reader, Error> {
        if !db.exists() {
            return Err(Error::new(format!(
                "no metrics store at {} yet: the sampler creates it while the lab is up (`prodhome up`)",
                db.display()
            )));
        }
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sqlite("opening", db, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite("setting the busy timeout", db, e))?;
        Ok(Reader {
            conn,
            path: db.to_path_buf(),
        })
    }

    /// Every series of `measurement` (of one `node`, when given) with
    /// samples from `since_ns` on. With a `step` above zero, samples are
    /// averaged into buckets of that width aligned to the epoch, each
    /// stamped with its start; with a zero step they come back as stored.
    pub fn series(
        &self,
        measurement: &str,
        node: Option<&str>,
        since_ns: i64,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        let what = "reading series";
        let fail = |e| sqlite(what, &self.path, e);
        let tagsets: Vec<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT id, tags FROM tagsets WHERE measurement = ?1 AND (?2 IS NULL OR node = ?2) ORDER BY tags",
            )
            .and_then(|mut s| s.query_map(params![measurement, node], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(fail)?;
        let mut fields_of = self
            .conn
            .prepare_cached("SELECT idx, name, kind FROM fields WHERE tagset = ?1 ORDER BY name")
            .map_err(fail)?;
        let mut chunks = self
            .conn
            .prepare_cached(
                "SELECT data FROM chunks WHERE tagset = ?1 AND first_ts >= ?2 AND last_ts >= ?3
                 ORDER BY first_ts, rowid",
            )
            .map_err(fail)?;
        let step_ns = step.as_nanos().min(i64::MAX as u128) as i64;
        let mut out = Vec::new();
        for (id, tags) in tagsets {
            let fields: Vec<(u16, String)> = fields_of
                .query_map(params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(fail)?
                .into_iter()
                .filter(|(_, _, kind)| kind != "s")
                .map(|(idx, name, _)| (idx, name))
                .collect();
            if fields.is_empty() {
                continue;
            }
            let values = self.values(&mut chunks, id, &fields, since_ns)?;
            let tags: BTreeMap<String, String> = serde_json::from_str(&tags).unwrap_or_default();
            for ((_, field), points) in fields.into_iter().zip(values) {
                if points.is_empty() {
                    continue;
                }
                out.push(Series {
                    measurement: measurement.to_string(),
                    tags: tags.clone(),
                    field,
                    points: downsample(in_order(points), step_ns),
                });
            }
        }
        Ok(out)
    }

    /// The numeric samples of each of `fields` (by position) in one
    /// tagset's chunks, from `since_ns` on; NaN and text left out.
    fn values(
        &self,
        chunks: &mut rusqlite::CachedStatement<'_>,
        id: i64,
        fields: &[(u16, String)],
        since_ns: i64,
    ) -> Result<Vec<Vec<(i64, f64)>>, Error> {
        let fail = |e| sqlite("reading series", &self.path, e);
        // Field index -> position in `values`.
        let slots = fields.iter().map(|f| f.0 as usize).max().unwrap_or(0) + 1;
        let mut slot = vec![usize::MAX; slots];
        for (i, (idx, _)) in fields.iter().enumerate() {
            slot[*idx as usize] = i;
        }
        let mut values: Vec<Vec<(i64, f64)>> = vec![Vec::new(); fields.len()];
        let mut rows = chunks
            .query(params![id, since_ns.saturating_sub(MAX_SPAN), since_ns])
            .map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let data = row.get_ref(0).map_err(fail)?.as_blob().unwrap_or_default();
            codec::decode(data, |ts, idx, value| {
                if ts < since_ns {
                    return;
                }
                if let (Some(&i), Value::Number(v)) = (slot.get(idx as usize), value)
                    && i != usize::MAX
                    && !v.is_nan()
                {
                    values[i].push((ts, v));
                }
            });
        }
        Ok(values)
    }

    /// Events from `since_ns` on, oldest first.
    pub fn events(&self, since_ns: i64) -> Result<Vec<Event>, Error> {
        let what = "reading events";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT json FROM events WHERE ts >= ?1 ORDER BY ts")
            .map_err(|e| sqlite(what, &self.path, e))?;
        let rows: Vec<String> = stmt
            .query_map(params![since_ns], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| sqlite(what, &self.path, e))?;
        // An event kind this build does not know (written by a newer one)
        // is skipped rather than failing the whole read.
        Ok(rows.iter().filter_map(|j| serde_json::from_str(j).ok()).collect())
    }

    /// The measurements in the store with their fields.
    pub fn measurements(&self) -> Result<Vec<Measurement>, Error> {
        let what = "listing measurements";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.measurement, f.name, count(*) FROM tagsets t JOIN fields f ON f.tagset = t.id
                 GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .map_err(|e| sqlite(what, &self.path, e))?;
        let rows: Vec<(String, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| sqlite(what, &self.path, e))?;
        let mut out: Vec<Measurement> = Vec::new();
        for (name, field, n) in rows {
            match out.last_mut() {
                Some(m) if m.name == name => {
                    m.fields.push(field);
                    m.series += n as usize;
                }
                _ => out.push(Measurement {
                    name,
                    fields: vec![field],
                    series: n as usize,
                }),
            }
        }
        Ok(out)
    }
}

/// [`Reader::series`] on a fresh connection.
pub fn series(
    db: &Path,
    measurement: &str,
    node: Option<&str>,
    since_ns: i64,
    step: Duration,
) -> Result<Vec<Series>, Error> {
    Reader::open(db)?.series(measurement, node, since_ns, step)
}

/// [`Reader::events`] on a fresh connection.
pub fn events(db: &Path, since_ns: i64) -> Result<Vec<Event>, Error> {
    Reader::open(db)?.events(since_ns)
}

/// [`Reader::measurements`] on a fresh connection.
pub fn measurements(db: &Path) -> Result<Vec<Measurement>, Error> {
    Reader::open(db)?.measurements()
}

/// Sorts samples by time when chunks overlapped (late or rewritten
/// points); of two samples with one timestamp the later write wins.
fn in_order(mut points: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if points.windows(2).all(|w| w[0].0 < w[1].0) {
        return points;
    }
    points.sort_by_key(|p| p.0); // stable: write order kept among equals
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(points.len());
    for p in points {
        match out.last_mut() {
            Some(last) if last.0 == p.0 => *last = p,
            _ => out.push(p),
        }
    }
    out
}

/// Averages time-ordered samples into epoch-aligned buckets of `step` ns
/// (a step of 0 or 1 keeps them as they are).
fn downsample(points: Vec<(i64, f64)>, step: i64) -> Vec<(i64, f64)> {
    if step <= 1 {
        return points;
    }
    let mut out: Vec<(i64, f64)> = Vec::new();
    let mut bucket: Option<(i64, f64, u32)> = None;
    for (ts, value) in points {
        let start = ts - ts.rem_euclid(step);
        match &mut bucket {
            Some((at, sum, n)) if *at == start => {
                *sum += value;
                *n += 1;
            }
            _ => {
                if let Some((at, sum, n)) = bucket.take() {
                    out.push((at, sum / n as f64));
                }
                bucket = Some((start, value, 1));
            }
        }
    }
    if let Some((at, sum, n)) = bucket {
        out.push((at, sum / n as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_epoch_aligned_buckets() {
        let points = vec![(3, 1.0), (9, 3.0), (10, 5.0), (25, 7.0), (29, 9.0)];
        assert_eq!(
            downsample(points.clone(), 10),
            vec![(0, 2.0), (10, 5.0), (20, 8.0)]
        );
        assert_eq!(downsample(points.clone(), 0), points);
    }

    #[test]
    fn overlapping_samples_are_sorted_and_the_later_write_wins() {
        assert_eq!(
            in_order(vec![(1, 1.0), (3, 3.0), (2, 2.0), (3, 4.0)]),
            vec![(1, 1.0), (2, 2.0), (3, 4.0)]
        );
    }
}
