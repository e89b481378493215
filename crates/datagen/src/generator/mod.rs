//! Column generators: each writes one value in COPY text format for a row's
//! global index, drawing from its own seeded stream.
//!
//! `Unique` generators are bijective in the row's global index (no
//! duplicates by construction, across fills too: each fill continues where
//! the last one ended); the others are random.

mod named;
mod scalar;

use bytes::BytesMut;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use named::Named;

/// What a column gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Gen {
    /// Left out of COPY: the server's default, identity or generated value.
    ServerDefault,
    Null,
    /// Uniform integer in `[lo, hi]`.
    Int {
        lo: i64,
        hi: i64,
    },
    /// `lo + index`: unique.
    Sequence {
        lo: i64,
    },
    /// Fixed point with `scale` digits, units in `[lo, hi]`.
    Numeric {
        lo: i64,
        hi: i64,
        scale: u32,
    },
    Float {
        lo: f64,
        hi: f64,
    },
    /// A word of `min..=max` lowercase letters.
    Text {
        min: u32,
        max: u32,
    },
    /// The index in base 36, prefixed where it fits: unique.
    UniqueText {
        max: u32,
    },
    Bool,
    /// Days since 2000-01-01 in `[0, span)`.
    Date {
        span: i64,
    },
    UniqueDate,
    Timestamp {
        tz: bool,
    },
    Uuid,
    /// Random bits with the index in the low 64: unique.
    UniqueUuid,
    Json,
    Bytea,
    /// One of the labels or list values, uniformly.
    Choice {
        values: Vec<String>,
    },
    Array {
        element: Box<Gen>,
    },
    /// A parent's key, drawn with a Zipf-like skew (hot parents).
    Foreign {
        constraint: String,
        position: usize,
    },
    /// A parent's key, the index-th one: one child per parent.
    ForeignUnique {
        constraint: String,
        position: usize,
    },
    Named(Named),
}

/// A seeded stream for one (seed, table, column, batch).
pub(crate) fn stream(seed: u64, table: &str, column: &str, batch: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(table).rotate_left(17) ^ fnv(column));
    rng.set_stream(batch);
    rng
}

/// FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An index in `0..n` skewed toward 0: the first parents are hot.
pub(crate) fn skewed(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let u: f64 = rng.random();
    ((u * u * u) * n as f64) as usize % n.max(1)
}

/// Writes one value of `gen` for global row `index`. Foreign keys are
/// written by the caller, which holds the parents' keys.
pub(crate) fn write(g: &Gen, rng: &mut ChaCha8Rng, index: u64, out: &mut BytesMut) {
    match g {
        Gen::Named(n) => n.write(rng, index, out),
        Gen::Array { element } => {
            let len = rng.random_range(0..5);
            out.extend_from_slice(b"{");
            for i in 0..len {
                if i > 0 {
                    out.extend_from_slice(b",");
                }
                out.extend_from_slice(b"\"");
                scalar::write(element, rng, index, out);
                out.extend_from_slice(b"\"");
            }
            out.extend_from_slice(b"}");
        }
        other => scalar::write(other, rng, index, out),
    }
}

/// Appends `s` escaped for COPY text format.
pub(crate) fn escape(s: &str, out: &mut BytesMut) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[b]),
        }
    }
}
