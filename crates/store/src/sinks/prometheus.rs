//! The Prometheus sink: the latest value of every series, rendered in the
//! text exposition format (version 0.0.4) for the daemon to serve at
//! `/metrics`.
//!
//! Each numeric field of a measurement becomes one gauge,
//! `prodhome_<measurement>_<field>`, labelled with the point's tags (names
//! outside `[a-zA-Z0-9_]` become `_`). Strings are left out: Prometheus has
//! no string samples. No timestamps are exposed, so Prometheus stamps each
//! scrape itself and never sees a sample as out of order. A series that has
//! not been updated for [`STALE_AFTER`] is forgotten, so a backend or slot
//! that went away stops being reported.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::{FieldValue, Point};

use crate::lane::{Inbox, Msg};

/// A series not updated for this long is dropped from the exposition.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// Metric name -> (label block -> latest value and when it came).
#[derive(Default)]
pub(crate) struct Latest {
    metrics: BTreeMap<String, Metric>,
}

struct Metric {
    help: String,
    series: BTreeMap<String, (f64, Instant)>,
}

pub(crate) type Shared = Arc<Mutex<Latest>>;

impl Latest {
    pub(crate) fn update(&mut self, point: &Point, now: Instant) {
        let labels = label_block(&point.tags);
        for (field, value) in &point.fields {
            let value = match value {
                FieldValue::I64(i) => *i as f64,
                FieldValue::F64(f) => *f,
                FieldValue::Bool(b) => *b as i64 as f64,
                FieldValue::Str(_) => continue,
            };
            let name = metric_name(&point.measurement, field);
            let metric = self.metrics.entry(name).or_insert_with(|| Metric {
                help: format!(
                    "Field `{}` of measurement `{}` (latest sample; see the sampler crate's docs).",
                    field, point.measurement
                ),
                series: BTreeMap::new(),
            });
            metric.series.insert(labels.clone(), (value, now));
        }
    }

    /// The exposition text; forgets stale series on the way.
    pub(crate) fn render(&mut self, now: Instant) -> String {
        let mut out = String::new();
        self.metrics.retain(|name, metric| {
            metric
                .series
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < STALE_AFTER);
            if metric.series.is_empty() {
                return false;
            }
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&metric.help));
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, (value, _)) in &metric.series {
                let _ = writeln!(out, "{name}{labels} {}", number(*value));
            }
            true
        });
        out
    }
}

/// `prodhome_<measurement>_<field>`, with every character Prometheus does
/// not allow in a name replaced by `_`.
pub(crate) fn metric_name(measurement: &str, field: &str) -> String {
    let mut name = String::from("prodhome_");
    sanitize(measurement, &mut name);
    name.push('_');
    sanitize(field, &mut name);
    name
}

fn sanitize(text: &str, out: &mut String) {
    for c in text.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
}

/// `{a="x",b="y"}` (empty when there are no tags).
fn label_block(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (key, value)) in tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut name = String::new();
        sanitize(key, &mut name);
        if name.starts_with(|c: char| c.is_ascii_digit()) || name.starts_with("__") {
            name.insert(0, 'l');
        }
        out.push_str(&name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The sink's task: keeps `latest` up to date.
pub(crate) async fn run(latest: Shared, mut inbox: Inbox) {
    while let Some(item) = inbox.rx.recv().await {
        match &item.msg {
            Msg::Points(points) => {
                let now = Instant::now();
                let mut latest = latest.lock().unwrap_or_else(|e| e.into_inner());
                for p in points.iter() {
                    latest.update(p, now);
                }
                inbox.counters.wrote(points.len());
            }
            Msg::Event(_) => {}
            Msg::Flush(_) => {}
        }
        if let Msg::Flush(done) = item.msg {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_escaped_labels_grouped_by_metric() {
        let mut latest = Latest::default();
        let now = Instant::now();
        latest.update(
            &Point::new("locks", 1)
                .tag("node", "pub")
                .tag("mode", "Row\"Exclusive")
                .int("count", 2)
                .field("note", FieldValue::Str("skipped".into())),
            now,
        );
        latest.update(&Point::new("locks", 1).tag("node", "sub").int("count", 3), now);
        latest.update(&Point::new("locks", 2).tag("node", "sub").int("count", 4), now);
        let text = latest.render(now);
        assert_eq!(
            text,
            "# HELP prodhome_locks_count Field `count` of measurement `locks` (latest sample; see the sampler crate's docs).\n\
             # TYPE prodhome_locks_count gauge\n\
             prodhome_locks_count{mode=\"Row\\\"Exclusive\",node=\"pub\"} 2\n\
             prodhome_locks_count{node=\"sub\"} 4\n"
        );
    }

    #[test]
    fn stale_series_are_forgotten() {
        let mut latest = Latest::default();
        let then = Instant::now();
        latest.update(&Point::new("m", 1).tag("node", "a").float("x", 1.5), then);
        assert!(latest.render(then).contains("prodhome_m_x{node=\"a\"} 1.5"));
        assert_eq!(latest.render(then + STALE_AFTER), "");
    }
}
