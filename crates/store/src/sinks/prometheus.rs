//! The Prometheus sink: the latest value of every series, rendered in the
//! text exposition format (version 0.0.4) for the daemon to serve at
//! `/metrics`.
//!
//! Each numeric field of a measurement becomes one series, named, typed
//! and explained by the table in [`names`] (Prometheus's conventions:
//! base units, `_total` on counters), labelled with the point's tags (names
//! outside `[a-zA-Z0-9_]` become `_`). Strings are left out: Prometheus has
//! no string samples. There is no `lab` label: which lab (and which
//! daemon) a series came from is the scrape's business, a target label
//! Prometheus adds from its scrape config (`job`, `instance`, or
//! `labels: {lab: NAME}` in a static config), as its docs advise. No timestamps are exposed, so Prometheus stamps each
//! scrape itself and never sees a sample as out of order. A series that has
//! not been updated for [`STALE_AFTER`] is forgotten, so a backend or slot
//! that went away stops being reported.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::{FieldValue, Point};

use crate::lane::{Inbox, Msg};

pub(crate) mod names;

use names::{Kind, sanitize};

/// A series not updated for this long is dropped from the exposition.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// Metric name -> (label block -> latest value and when it came).
#[derive(Default)]
pub(crate) struct Latest {
    metrics: BTreeMap<String, Metric>,
}

struct Metric {
    help: String,
    kind: Kind,
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
            let series = names::series(&point.measurement, field);
            let metric = self.metrics.entry(series.name).or_insert_with(|| Metric {
                help: series.help,
                kind: series.kind,
                series: BTreeMap::new(),
            });
            let value = value / series.divide_by;
            let entry = metric.series.entry(labels.clone()).or_insert((0.0, now));
            *entry = match metric.kind {
                Kind::Increments => (entry.0 + value, now),
                Kind::Gauge | Kind::Counter => (value, now),
            };
        }
    }

    /// The exposition text; forgets stale series on the way.
    pub(crate) fn render(&mut self, now: Instant) -> String {
        let mut out = String::new();
        self.metrics.retain(|name, metric| {
            // A count of occurrences stays true while nothing happens.
            if metric.kind != Kind::Increments {
                metric
                    .series
                    .retain(|_, (_, at)| now.saturating_duration_since(*at) < STALE_AFTER);
            }
            if metric.series.is_empty() {
                return false;
            }
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&metric.help));
            let _ = writeln!(out, "# TYPE {name} {}", metric.kind.type_name());
            for (labels, (value, _)) in &metric.series {
                let _ = writeln!(out, "{name}{labels} {}", number(*value));
            }
            true
        });
        out
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
            "# HELP prodhome_locks Rows in pg_locks by mode, lock type and whether granted.\n\
             # TYPE prodhome_locks gauge\n\
             prodhome_locks{mode=\"Row\\\"Exclusive\",node=\"pub\"} 2\n\
             prodhome_locks{node=\"sub\"} 4\n"
        );
    }

    #[test]
    fn units_are_converted_and_occurrences_summed_into_counters() {
        let mut latest = Latest::default();
        let now = Instant::now();
        latest.update(
            &Point::new("hum", 1)
                .tag("node", "p")
                .float("latency_p99_ms", 250.0),
            now,
        );
        for _ in 0..3 {
            latest.update(
                &Point::new("sample_errors", 1)
                    .tag("collector", "locks")
                    .int("count", 1),
                now,
            );
        }
        let text = latest.render(now);
        assert!(
            text.contains("prodhome_hum_latency_p99_seconds{node=\"p\"} 0.25\n"),
            "{text}"
        );
        let text = latest.render(now + STALE_AFTER);
        assert!(
            text.contains("# TYPE prodhome_sample_errors_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("prodhome_sample_errors_total{collector=\"locks\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("hum"), "the gauge went stale: {text}");
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
