//! Generators for the built-in types.

use std::fmt::Write as _;

use bytes::BytesMut;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Gen, escape};

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

pub(super) fn write(g: &Gen, rng: &mut ChaCha8Rng, index: u64, out: &mut BytesMut) {
    match g {
        Gen::ServerDefault | Gen::Null => out.extend_from_slice(b"\\N"),
        Gen::Int { lo, hi } => put(out, rng.random_range(*lo..=*hi)),
        Gen::Sequence { lo } => put(out, lo.saturating_add(index as i64)),
        Gen::Numeric { lo, hi, scale } => numeric(out, rng.random_range(*lo..=*hi), *scale),
        Gen::Float { lo, hi } => {
            let v = rng.random_range(*lo..=*hi);
            let _ = write!(Fmt(out), "{v}");
        }
        Gen::Text { min, max } => {
            let len = rng.random_range(*min..=*max);
            for _ in 0..len {
                out.extend_from_slice(&[LETTERS[rng.random_range(0..26)]]);
            }
        }
        Gen::UniqueText { .. } => unique_text(out, index),
        Gen::Bool => out.extend_from_slice(if rng.random_bool(0.5) { b"t" } else { b"f" }),
        Gen::Date { span } => date(out, rng.random_range(0..*span)),
        Gen::UniqueDate => date(out, index as i64),
        Gen::Timestamp { tz } => {
            date(out, rng.random_range(0..9131));
            let s: u32 = rng.random_range(0..86_400);
            let _ = write!(Fmt(out), " {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
            if *tz {
                out.extend_from_slice(b"+00");
            }
        }
        Gen::Uuid => uuid(out, rng.random(), rng.random()),
        Gen::UniqueUuid => uuid(out, rng.random(), index),
        Gen::Json => {
            let n: u32 = rng.random_range(0..100_000);
            let _ = write!(Fmt(out), "{{\"n\": {n}, \"tag\": \"");
            write(&Gen::Text { min: 3, max: 10 }, rng, index, out);
            let ok = if rng.random_bool(0.5) { "true" } else { "false" };
            let _ = write!(Fmt(out), "\", \"ok\": {ok}}}");
        }
        Gen::Bytea => {
            out.extend_from_slice(b"\\\\x");
            for _ in 0..rng.random_range(4..32) {
                let _ = write!(Fmt(out), "{:02x}", rng.random::<u8>());
            }
        }
        Gen::Choice { values } => escape(&values[rng.random_range(0..values.len())], out),
        // Written by `generator::write` or the caller.
        Gen::Array { .. } | Gen::Named(_) | Gen::Foreign { .. } | Gen::ForeignUnique { .. } => {
            out.extend_from_slice(b"\\N")
        }
    }
}

fn put(out: &mut BytesMut, v: i64) {
    let _ = write!(Fmt(out), "{v}");
}

fn numeric(out: &mut BytesMut, units: i64, scale: u32) {
    if scale == 0 {
        return put(out, units);
    }
    let p = 10i64.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let a = units.unsigned_abs();
    let _ = write!(
        Fmt(out),
        "{sign}{}.{:0w$}",
        a / p as u64,
        a % p as u64,
        w = scale as usize
    );
}

/// `index` in base 36: unique, and as short as it can be (no padding: a
/// padded form could collide with a longer index).
fn unique_text(out: &mut BytesMut, index: u64) {
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

/// Days since 2000-01-01 (Postgres's own epoch) as Y-M-D.
fn date(out: &mut BytesMut, days: i64) {
    let (y, m, d) = model::civil_from_days(days + 10_957);
    let _ = write!(Fmt(out), "{y:04}-{m:02}-{d:02}");
}

fn uuid(out: &mut BytesMut, hi: u64, lo: u64) {
    // Version 4, variant 1, so tools that check them accept it.
    let hi = (hi & !0xf000) | 0x4000;
    let lo = lo & 0x0fff_ffff_ffff_ffff | 0x8000_0000_0000_0000;
    let _ = write!(
        Fmt(out),
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    );
}

/// `fmt::Write` onto a `BytesMut`.
struct Fmt<'a>(&'a mut BytesMut);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut b = BytesMut::new();
        f(&mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn dates_numerics_and_unique_text_print_as_postgres_reads_them() {
        assert_eq!(text(|b| date(b, 0)), "2000-01-01");
        assert_eq!(text(|b| date(b, 366)), "2001-01-01");
        assert_eq!(text(|b| numeric(b, -1234, 2)), "-12.34");
        assert_eq!(text(|b| numeric(b, 5, 3)), "0.005");
        assert_eq!(text(|b| unique_text(b, 35)), "z");
        assert_eq!(text(|b| unique_text(b, 36)), "10");
    }
}
