//! Values of the built-in generators, drawn from a column's stream. Text
//! and bytes go into the caller's scratch buffer; `encode` turns a
//! [`Value`] into COPY text or binary, so both formats carry the same rows.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Gen, Value};

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Days in 2000–2024: dates and timestamps are drawn from them.
const DAYS: i64 = 9131;
const MICROS_PER_DAY: i64 = 86_400_000_000;

pub(super) fn draw(g: &Gen, rng: &mut ChaCha8Rng, index: u64, scratch: &mut Vec<u8>) -> Value {
    match g {
        Gen::Int { lo, hi } => Value::Int(rng.random_range(*lo..=*hi)),
        Gen::Sequence { lo } => Value::Int(lo.saturating_add(index as i64)),
        Gen::Numeric { lo, hi, scale } => Value::Numeric {
            units: rng.random_range(*lo..=*hi),
            scale: *scale,
        },
        Gen::Float { lo, hi } => Value::Float(rng.random_range(*lo..=*hi)),
        Gen::Text { min, max } => {
            let len = rng.random_range(*min..=*max);
            letters(rng, len, scratch);
            Value::Text
        }
        Gen::UniqueText { .. } => {
            unique_text(scratch, index);
            Value::Text
        }
        Gen::Bool => Value::Bool(rng.random_bool(0.5)),
        Gen::Date { span } => Value::Date(rng.random_range(0..*span)),
        Gen::UniqueDate => Value::Date(index as i64),
        Gen::Timestamp { tz } => {
            let day = rng.random_range(0..DAYS);
            let second: i64 = rng.random_range(0..86_400);
            Value::Timestamp {
                micros: day * MICROS_PER_DAY + second * 1_000_000,
                tz: *tz,
            }
        }
        Gen::Uuid => uuid(rng.random(), rng.random()),
        Gen::UniqueUuid => uuid(rng.random(), index),
        Gen::Json => {
            json(rng, scratch);
            Value::Json
        }
        Gen::Bytea => {
            for _ in 0..rng.random_range(4..32) {
                scratch.push(rng.random::<u8>());
            }
            Value::Bytes
        }
        Gen::Choice { values } => {
            scratch.extend_from_slice(values[rng.random_range(0..values.len())].as_bytes());
            Value::Text
        }
        Gen::Named(n) => n.draw(rng, index, scratch),
        // Left out of COPY, NULL, or written by the row writer (arrays,
        // parents' keys).
        Gen::ServerDefault
        | Gen::Null
        | Gen::Array { .. }
        | Gen::Foreign { .. }
        | Gen::ForeignUnique { .. } => Value::Null,
    }
}

/// `len` lowercase letters: up to 13 from each 64-bit draw (26^13 < 2^64).
fn letters(rng: &mut ChaCha8Rng, len: u32, out: &mut Vec<u8>) {
    let mut left = len;
    while left > 0 {
        let mut bits: u64 = rng.random();
        for _ in 0..left.min(13) {
            out.push(LETTERS[(bits % 26) as usize]);
            bits /= 26;
        }
        left -= left.min(13);
    }
}

/// `{"n": N, "tag": "letters", "ok": bool}`.
fn json(rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"n\": ");
    super::decimal(out, rng.random_range(0..100_000));
    out.extend_from_slice(b", \"tag\": \"");
    let len = rng.random_range(3..=10);
    letters(rng, len, out);
    out.extend_from_slice(if rng.random_bool(0.5) {
        b"\", \"ok\": true}"
    } else {
        b"\", \"ok\": false}"
    });
}

/// Version 4, variant 1, so tools that check them accept it.
fn uuid(hi: u64, lo: u64) -> Value {
    Value::Uuid(
        (hi & !0xf000) | 0x4000,
        lo & 0x0fff_ffff_ffff_ffff | 0x8000_0000_0000_0000,
    )
}

/// `index` in base 36: unique, and as short as it can be (no padding: a
/// padded form could collide with a longer index).
fn unique_text(out: &mut Vec<u8>, index: u64) {
    let mut digits = [0u8; 13];
    let mut n = index;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = BASE36[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_text_is_the_index_in_base_36() {
        let text = |i| {
            let mut b = Vec::new();
            unique_text(&mut b, i);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(text(35), "z");
        assert_eq!(text(36), "10");
    }
}
