//! InfluxDB line protocol: `measurement,tag=v field=1i,other=2.5 TS_NS`.
//!
//! Escaping follows the InfluxDB reference: commas and spaces in
//! measurements; commas, equals signs and spaces in tag keys, tag values and
//! field keys; double quotes and backslashes in string field values. Tags
//! with empty values are left out (InfluxDB rejects them), as are float
//! fields that are not finite; a point left with no field is skipped. A
//! newline, which no part of a line may hold, becomes a space.

use std::fmt::Write;

use model::{Event, FieldValue, Point};

/// Appends one line for `point` (with its newline) to `out`, with the tag
/// `lab` added when given and the point has none; returns false when the
/// point had nothing writable and was skipped.
pub(crate) fn encode(point: &Point, lab: Option<&str>, out: &mut String) -> bool {
    let start = out.len();
    escape(&point.measurement, &[',', ' '], out);
    let lab = lab.filter(|_| !point.tags.contains_key("lab"));
    let mut extra = lab.map(|l| ("lab", l));
    // Tags in key order (InfluxDB's advice): the lab tag slots in.
    for (key, value) in &point.tags {
        if let Some((k, v)) = extra.filter(|(k, _)| *k < key.as_str()) {
            tag(k, v, out);
            extra = None;
        }
        tag(key, value, out);
    }
    if let Some((k, v)) = extra {
        tag(k, v, out);
    }
    let mut sep = ' ';
    for (key, value) in &point.fields {
        if let FieldValue::F64(f) = value
            && !f.is_finite()
        {
            continue;
        }
        out.push(sep);
        sep = ',';
        escape(key, &[',', '=', ' '], out);
        out.push('=');
        match value {
            FieldValue::I64(i) => {
                let _ = write!(out, "{i}i");
            }
            FieldValue::F64(f) => {
                // `{:?}` keeps a decimal point (1.0, not 1), so InfluxDB
                // never mistakes a float for an integer.
                let _ = write!(out, "{f:?}");
            }
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Str(s) => {
                out.push('"');
                escape(s, &['"', '\\'], out);
                out.push('"');
            }
        }
    }
    if sep == ' ' {
        out.truncate(start);
        return false;
    }
    let _ = writeln!(out, " {}", point.ts_ns);
    true
}

fn tag(key: &str, value: &str, out: &mut String) {
    if value.is_empty() || key.is_empty() {
        return;
    }
    out.push(',');
    escape(key, &[',', '=', ' '], out);
    out.push('=');
    escape(value, &[',', '=', ' '], out);
}

/// An event as a point of measurement `events`: tags unit and kind, field
/// `text` (what the dashboard shows), so Grafana can draw it as an
/// annotation.
pub(crate) fn event_point(event: &Event) -> Point {
    Point::new("events", event.ts_ns)
        .tag("unit", event.unit.clone())
        .tag("kind", event.kind.name())
        .field("text", FieldValue::Str(event.to_string()))
}

fn escape(text: &str, special: &[char], out: &mut String) {
    for c in text.chars() {
        // A newline would end the line, and no part of a line may hold
        // one: it becomes a space (escaped where a space is special).
        let c = if c == '\n' || c == '\r' { ' ' } else { c };
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_types_and_escapes_like_the_reference() {
        let p = Point::new("my measure,x", 1_700_000_000_000_000_000)
            .tag("node", "pub 1")
            .tag("mode", "a=b,c")
            .tag("empty", "")
            .int("count", 3)
            .float("age s", 1.0)
            .field("ok", FieldValue::Bool(true))
            .field("msg", FieldValue::Str(r#"say "hi" \o/"#.into()));
        let mut out = String::new();
        assert!(encode(&p, None, &mut out));
        assert_eq!(
            out,
            "my\\ measure\\,x,mode=a\\=b\\,c,node=pub\\ 1 age\\ s=1.0,count=3i,msg=\"say \\\"hi\\\" \\\\o/\",ok=true 1700000000000000000\n"
        );
    }

    #[test]
    fn a_point_with_only_non_finite_floats_is_skipped() {
        let p = Point::new("m", 1).tag("node", "n").float("x", f64::NAN);
        let mut out = String::from("before\n");
        assert!(!encode(&p, Some("shop"), &mut out));
        assert_eq!(out, "before\n");
    }

    #[test]
    fn the_lab_tag_slots_in_by_key_and_a_point_s_own_wins() {
        let mut out = String::new();
        let p = Point::new("m", 1).tag("kind", "k").tag("node", "n").int("x", 1);
        encode(&p, Some("my lab"), &mut out);
        encode(&Point::new("m", 2).int("x", 1), Some("shop"), &mut out);
        encode(
            &Point::new("m", 3).tag("lab", "own").int("x", 1),
            Some("shop"),
            &mut out,
        );
        assert_eq!(
            out,
            "m,kind=k,lab=my\\ lab,node=n x=1i 1\nm,lab=shop x=1i 2\nm,lab=own x=1i 3\n"
        );
    }
}
