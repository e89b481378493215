//! Drawn [`Value`]s as COPY text or COPY binary. Binary saves the server
//! parsing every number, date and uuid from text; a table goes binary when
//! every column it writes has an encoding here ([`column_enc`]), else text.
//! Both formats carry the same values, so a seed gives the same rows in
//! either.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use crate::catalog::Type;
use crate::generator::{Gen, Named, Value, decimal};

/// The binary header: signature, flags, no extension.
pub(crate) const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary trailer: a field count of -1.
pub(crate) const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// A column's binary wire format (its type's `recv` function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Bool,
    Date,
    Timestamp,
    Uuid,
    /// text, varchar, char, name and enum labels: the bytes.
    Text,
    Json,
    Jsonb,
    Bytea,
}

/// The binary format of a type prodhome writes, if any.
pub(crate) fn type_enc(ty: &Type) -> Option<Enc> {
    Some(match ty {
        Type::Int2 => Enc::Int2,
        Type::Int4 => Enc::Int4,
        Type::Int8 => Enc::Int8,
        Type::Numeric { .. } => Enc::Numeric,
        Type::Float4 => Enc::Float4,
        Type::Float8 => Enc::Float8,
        Type::Text { .. } | Type::Enum(_) => Enc::Text,
        Type::Bool => Enc::Bool,
        Type::Date => Enc::Date,
        Type::Timestamp | Type::Timestamptz => Enc::Timestamp,
        Type::Uuid => Enc::Uuid,
        Type::Json => Enc::Json,
        Type::Jsonb => Enc::Jsonb,
        Type::Bytea => Enc::Bytea,
        Type::Array(_) | Type::Unknown(_) => return None,
    })
}

/// The column's binary format when `g`'s values fit it. Foreign keys fit
/// when the parent's column has the same format (the caller checks).
pub(crate) fn column_enc(g: &Gen, ty: &Type) -> Option<Enc> {
    let enc = type_enc(ty)?;
    let fits = match g {
        Gen::Null | Gen::ServerDefault | Gen::Foreign { .. } | Gen::ForeignUnique { .. } => true,
        Gen::Int { .. } | Gen::Sequence { .. } | Gen::Named(Named::Range { .. }) => {
            matches!(enc, Enc::Int2 | Enc::Int4 | Enc::Int8 | Enc::Numeric)
        }
        Gen::Numeric { .. } => enc == Enc::Numeric,
        Gen::Float { .. } => matches!(enc, Enc::Float4 | Enc::Float8),
        Gen::Text { .. } | Gen::UniqueText { .. } | Gen::Choice { .. } | Gen::Named(_) => enc == Enc::Text,
        Gen::Bool => enc == Enc::Bool,
        Gen::Date { .. } | Gen::UniqueDate => enc == Enc::Date,
        Gen::Timestamp { .. } => enc == Enc::Timestamp,
        Gen::Uuid | Gen::UniqueUuid => enc == Enc::Uuid,
        Gen::Json => matches!(enc, Enc::Json | Enc::Jsonb),
        Gen::Bytea => enc == Enc::Bytea,
        Gen::Array { .. } => false,
    };
    fits.then_some(enc)
}

/// One field in binary: its length, then its bytes (`scratch` for text).
pub(crate) fn binary(v: Value, enc: Enc, scratch: &[u8], out: &mut BytesMut) {
    match (v, enc) {
        (Value::Null, _) => out.put_i32(-1),
        (Value::Int(x), Enc::Int2) => int(out, x, i64::from(i16::MIN), i64::from(i16::MAX), 2),
        (Value::Int(x), Enc::Int4) => int(out, x, i64::from(i32::MIN), i64::from(i32::MAX), 4),
        (Value::Int(x), Enc::Int8) => int(out, x, i64::MIN, i64::MAX, 8),
        (Value::Int(x), Enc::Numeric) => numeric_binary(out, x, 0),
        (Value::Numeric { units, scale }, Enc::Numeric) => numeric_binary(out, units, scale),
        (Value::Float(f), Enc::Float4) => {
            out.put_i32(4);
            out.put_f32(f as f32);
        }
        (Value::Float(f), Enc::Float8) => {
            out.put_i32(8);
            out.put_f64(f);
        }
        (Value::Bool(b), Enc::Bool) => {
            out.put_i32(1);
            out.put_u8(u8::from(b));
        }
        (Value::Date(d), Enc::Date) => {
            out.put_i32(4);
            out.put_i32(d as i32);
        }
        (Value::Timestamp { micros, .. }, Enc::Timestamp) => {
            out.put_i32(8);
            out.put_i64(micros);
        }
        (Value::Uuid(hi, lo), Enc::Uuid) => {
            out.put_i32(16);
            out.put_u64(hi);
            out.put_u64(lo);
        }
        (Value::Json, Enc::Jsonb) => {
            out.put_i32(scratch.len() as i32 + 1);
            out.put_u8(1); // jsonb's binary version
            out.put_slice(scratch);
        }
        (Value::Text, _) | (Value::Json, _) | (Value::Bytes, _) => raw(scratch, out),
        // `column_enc` pairs every generator with a format its values fit,
        // so this arm is never taken; a bad length makes the server refuse
        // the batch rather than store something wrong.
        _ => out.put_i32(0),
    }
}

/// An integer of `width` bytes. A value outside the type (a numbered key
/// past it) is sent with the wrong length, so the server refuses the batch
/// as it would the text (COPY, line, column) instead of storing it wrapped.
fn int(out: &mut BytesMut, x: i64, min: i64, max: i64, width: i32) {
    if x < min || x > max {
        out.put_i32(8);
        out.put_i64(x);
        return;
    }
    out.put_i32(width);
    match width {
        2 => out.put_i16(x as i16),
        4 => out.put_i32(x as i32),
        _ => out.put_i64(x),
    }
}

/// Bytes as one binary field (text, json, bytea, a parent's key).
pub(crate) fn raw(bytes: &[u8], out: &mut BytesMut) {
    out.put_i32(bytes.len() as i32);
    out.put_slice(bytes);
}

/// `units / 10^scale` as Postgres's binary numeric: base-10000 digits,
/// most significant first, with the weight of the first.
fn numeric_binary(out: &mut BytesMut, units: i64, scale: u32) {
    // Pad the fraction to whole base-10000 digits.
    let pad = (4 - scale % 4) % 4;
    let mut n = u128::from(units.unsigned_abs()) * 10u128.pow(pad);
    let fraction = ((scale + pad) / 4) as i32;
    let mut groups = [0i16; 12];
    let mut count = 0;
    while n > 0 {
        groups[count] = (n % 10_000) as i16;
        n /= 10_000;
        count += 1;
    }
    let low = groups[..count].iter().take_while(|g| **g == 0).count();
    let digits = count - low;
    let weight = if digits == 0 {
        0
    } else {
        count as i32 - fraction - 1
    };
    out.put_i32(8 + 2 * digits as i32);
    out.put_i16(digits as i16);
    out.put_i16(weight as i16);
    out.put_u16(if units < 0 { 0x4000 } else { 0 });
    out.put_i16(scale as i16);
    for g in groups[low..count].iter().rev() {
        out.put_i16(*g);
    }
}

/// One field in COPY text format (`scratch` for text).
pub(crate) fn text(v: Value, scratch: &[u8], out: &mut BytesMut) {
    match v {
        Value::Null => out.put_slice(b"\\N"),
        Value::Int(x) => decimal(out, x),
        Value::Numeric { units, scale } => numeric_text(out, units, scale),
        Value::Float(f) => {
            let _ = write!(Fmt(out), "{f}");
        }
        Value::Bool(b) => out.put_u8(if b { b't' } else { b'f' }),
        Value::Date(d) => date(out, d),
        Value::Timestamp { micros, tz } => {
            const DAY: i64 = 86_400_000_000;
            date(out, micros.div_euclid(DAY));
            let s = micros.rem_euclid(DAY) / 1_000_000;
            out.put_u8(b' ');
            two(out, s / 3600);
            out.put_u8(b':');
            two(out, s / 60 % 60);
            out.put_u8(b':');
            two(out, s % 60);
            if tz {
                out.put_slice(b"+00");
            }
        }
        Value::Uuid(hi, lo) => {
            let hex = format_args!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                hi >> 32,
                (hi >> 16) & 0xffff,
                hi & 0xffff,
                lo >> 48,
                lo & 0xffff_ffff_ffff
            );
            let _ = Fmt(out).write_fmt(hex);
        }
        Value::Text | Value::Json => escape(scratch, out),
        Value::Bytes => {
            out.put_slice(b"\\\\x");
            for b in scratch {
                let _ = write!(Fmt(out), "{b:02x}");
            }
        }
    }
}

fn numeric_text(out: &mut BytesMut, units: i64, scale: u32) {
    if scale == 0 {
        return decimal(out, units);
    }
    let p = 10u64.pow(scale);
    let a = units.unsigned_abs();
    if units < 0 {
        out.put_u8(b'-');
    }
    decimal(out, (a / p) as i64);
    out.put_u8(b'.');
    let frac = a % p;
    let mut digits = [b'0'; 20];
    let mut f = frac;
    for i in (0..scale as usize).rev() {
        digits[i] = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.put_slice(&digits[..scale as usize]);
}

/// Days since 2000-01-01 (Postgres's own epoch) as Y-M-D.
fn date(out: &mut BytesMut, days: i64) {
    let (y, m, d) = model::civil_from_days(days + 10_957);
    if (0..10_000).contains(&y) {
        two(out, y / 100);
        two(out, y % 100);
    } else {
        decimal(out, y);
    }
    out.put_u8(b'-');
    two(out, m);
    out.put_u8(b'-');
    two(out, d);
}

fn two(out: &mut BytesMut, v: i64) {
    out.put_u8(b'0' + (v / 10 % 10) as u8);
    out.put_u8(b'0' + (v % 10) as u8);
}

/// Appends `s` escaped for COPY text format.
pub(crate) fn escape(s: &[u8], out: &mut BytesMut) {
    for &b in s {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            _ => out.put_u8(b),
        }
    }
}

/// `fmt::Write` onto a `BytesMut`: no `String` in between.
struct Fmt<'a>(&'a mut BytesMut);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(v: Value) -> String {
        let mut b = BytesMut::new();
        text(v, b"", &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn dates_timestamps_and_numerics_print_as_postgres_reads_them() {
        assert_eq!(text_of(Value::Date(0)), "2000-01-01");
        assert_eq!(text_of(Value::Date(366)), "2001-01-01");
        assert_eq!(
            text_of(Value::Timestamp {
                micros: 86_400_000_000 + 3_723_000_000,
                tz: true
            }),
            "2000-01-02 01:02:03+00"
        );
        assert_eq!(
            text_of(Value::Numeric {
                units: -1234,
                scale: 2
            }),
            "-12.34"
        );
        assert_eq!(text_of(Value::Numeric { units: 5, scale: 3 }), "0.005");
        assert_eq!(text_of(Value::Int(-42)), "-42");
    }

    #[test]
    fn binary_numerics_are_base_10000_digits_with_their_weight() {
        let bin = |units, scale| {
            let mut b = BytesMut::new();
            numeric_binary(&mut b, units, scale);
            b.chunks(2)
                .skip(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>()
        };
        // ndigits, weight, sign, dscale, digits…
        assert_eq!(bin(1234, 2), vec![2, 0, 0, 2, 12, 3400]);
        assert_eq!(bin(5, 3), vec![1, -1, 0, 3, 50]);
        assert_eq!(bin(10_000, 0), vec![1, 1, 0, 0, 1]);
        assert_eq!(bin(0, 2), vec![0, 0, 0, 2]);
        assert_eq!(bin(-7, 0), vec![1, 0, 0x4000, 0, 7]);
    }
}
