//! Column generators: each draws one `Value` for a row's global index
//! from its own seeded stream; `encode` writes it as COPY text or binary.
//!
//! `Unique` generators are bijective in the row's global index (no
//! duplicates by construction, across fills too: each fill continues where
//! the last one ended); the others are random.

mod named;
mod scalar;

use bytes::BufMut;
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

/// One drawn value. Text, JSON and bytes are in the scratch buffer the
/// value was drawn with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    /// `units / 10^scale`.
    Numeric {
        units: i64,
        scale: u32,
    },
    Float(f64),
    Bool(bool),
    /// Days since 2000-01-01.
    Date(i64),
    /// Microseconds since 2000-01-01 00:00 (UTC when `tz`).
    Timestamp {
        micros: i64,
        tz: bool,
    },
    Uuid(u64, u64),
    Text,
    Json,
    Bytes,
}

/// Draws one value of `g` for global row `index`; text goes into
/// `scratch`. Arrays and foreign keys are drawn by the row writer, which
/// holds the parents' keys.
pub(crate) fn draw(g: &Gen, rng: &mut ChaCha8Rng, index: u64, scratch: &mut Vec<u8>) -> Value {
    scalar::draw(g, rng, index, scratch)
}

/// Appends `v` in decimal, without `fmt`'s machinery.
pub(crate) fn decimal(out: &mut impl BufMut, v: i64) {
    let mut digits = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[i..]);
}
