//! The byte format of a chunk: the points of one tag set, one after the
//! other, each `ts` then its fields by index into the tag set's field list.
//!
//! ```text
//! point := ts:i64 count:u16 field*count
//! field := index:u16 type:u8 value       (all little-endian)
//! value := i64 (type 0) | f64 (type 1) | u8 (type 2, bool) | len:u32 utf8 (type 3, string)
//! ```
//!
//! Fixed-width values and no compression: decoding is a straight walk, and
//! a value costs 11 bytes instead of a SQLite row of its own.

use model::FieldValue;

const I64: u8 = 0;
const F64: u8 = 1;
const BOOL: u8 = 2;
const STR: u8 = 3;

/// Appends one point.
pub(crate) fn encode(ts: i64, fields: &[(u16, &FieldValue)], out: &mut Vec<u8>) {
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&(fields.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for (index, value) in fields.iter().take(u16::MAX as usize) {
        out.extend_from_slice(&index.to_le_bytes());
        match value {
            FieldValue::I64(i) => {
                out.push(I64);
                out.extend_from_slice(&i.to_le_bytes());
            }
            FieldValue::F64(f) => {
                out.push(F64);
                out.extend_from_slice(&f.to_le_bytes());
            }
            FieldValue::Bool(b) => {
                out.push(BOOL);
                out.push(*b as u8);
            }
            FieldValue::Str(s) => {
                out.push(STR);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// A decoded value: numbers as f64 (integers and booleans converted),
/// strings as they are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Number(f64),
    Text(&'a str),
}

/// Walks `data`, calling `each(ts, index, value)` for every field of every
/// point. Stops quietly at a truncated or unknown entry (a chunk written by
/// a newer version), returning false.
pub(crate) fn decode<'a>(data: &'a [u8], mut each: impl FnMut(i64, u16, Value<'a>)) -> bool {
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Option<&'a [u8]> {
        let bytes = data.get(*at..*at + n)?;
        *at += n;
        Some(bytes)
    };
    while at < data.len() {
        let Some(head) = take(&mut at, 10) else {
            return false;
        };
        let ts = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let count = u16::from_le_bytes([head[8], head[9]]);
        for _ in 0..count {
            let Some(h) = take(&mut at, 3) else {
                return false;
            };
            let index = u16::from_le_bytes([h[0], h[1]]);
            let value = match h[2] {
                I64 => take(&mut at, 8)
                    .map(|b| Value::Number(i64::from_le_bytes(b.try_into().expect("8")) as f64)),
                F64 => take(&mut at, 8).map(|b| Value::Number(f64::from_le_bytes(b.try_into().expect("8")))),
                BOOL => take(&mut at, 1).map(|b| Value::Number(b[0] as f64)),
                STR => take(&mut at, 4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4")) as usize)
                    .and_then(|len| take(&mut at, len))
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .map(Value::Text),
                _ => None,
            };
            let Some(value) = value else {
                return false;
            };
            each(ts, index, value);
        }
    }
    true
}

/// The byte range and timestamp of each whole point in `data`, in order
/// (for merging chunks without decoding values).
pub(crate) fn split(data: &[u8]) -> Vec<(i64, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 10 <= data.len() {
        let start = at;
        let ts = i64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let count = u16::from_le_bytes([data[at + 8], data[at + 9]]);
        at += 10;
        for _ in 0..count {
            let Some(kind) = data.get(at + 2) else {
                return out;
            };
            at += 3;
            at += match *kind {
                I64 | F64 => 8,
                BOOL => 1,
                STR => match data.get(at..at + 4) {
                    Some(b) => 4 + u32::from_le_bytes(b.try_into().expect("4")) as usize,
                    None => return out,
                },
                _ => return out,
            };
        }
        if at > data.len() {
            return out;
        }
        out.push((ts, start..at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_with_every_type() {
        let mut data = Vec::new();
        let (a, b, c, d) = (
            FieldValue::I64(-3),
            FieldValue::F64(2.5),
            FieldValue::Bool(true),
            FieldValue::Str("hé".into()),
        );
        encode(10, &[(0, &a), (1, &b)], &mut data);
        encode(20, &[(2, &c), (3, &d)], &mut data);
        let mut seen = Vec::new();
        assert!(decode(&data, |ts, i, v| seen.push((ts, i, format!("{v:?}")))));
        assert_eq!(
            seen,
            [
                (10, 0, "Number(-3.0)".to_string()),
                (10, 1, "Number(2.5)".into()),
                (20, 2, "Number(1.0)".into()),
                (20, 3, "Text(\"hé\")".into()),
            ]
        );
        let points = split(&data);
        assert_eq!(points.iter().map(|p| p.0).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(points[1].1.end, data.len());
        assert_eq!(split(&data[..data.len() - 1]).len(), 1);
        // A truncated chunk yields what is whole and says so.
        let mut n = 0;
        assert!(!decode(&data[..data.len() - 1], |_, _, _| n += 1));
        assert_eq!(n, 3);
    }
}
