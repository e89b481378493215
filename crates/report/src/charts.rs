//! Which series each chart draws: a small table keyed by measurement and
//! field. A measurement the table does not name is not drawn.

use std::collections::BTreeMap;

use crate::Series;

/// Where a chart goes on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The sampler's and hum's series (section `charts`).
    Metrics,
    /// The log reader's series (section `logs`).
    Logs,
}

/// One chart: the series of `measurement` whose field is one of
/// `fields`, one line per distinct value of the `by` tags (and field,
/// when there are several); series that share a line are summed.
#[derive(Debug, Clone, Copy)]
pub struct Chart {
    pub title: &'static str,
    pub group: Group,
    pub measurement: &'static str,
    pub fields: &'static [&'static str],
    pub by: &'static [&'static str],
    pub unit: &'static str,
}

const fn chart(
    title: &'static str,
    group: Group,
    measurement: &'static str,
    fields: &'static [&'static str],
    by: &'static [&'static str],
    unit: &'static str,
) -> Chart {
    Chart {
        title,
        group,
        measurement,
        fields,
        by,
        unit,
    }
}

use Group::{Logs, Metrics};

/// Every chart, in page order.
pub const CHARTS: &[Chart] = &[
    chart(
        "Throughput",
        Metrics,
        "hum",
        &["tps"],
        &["node"],
        "transactions/s",
    ),
    chart(
        "Latency",
        Metrics,
        "hum",
        &["latency_p50_ms", "latency_p99_ms"],
        &["node"],
        "ms",
    ),
    chart(
        "Hum errors",
        Metrics,
        "hum",
        &["errors", "reconnects"],
        &["node"],
        "per second",
    ),
    chart(
        "Replication lag",
        Metrics,
        "replication",
        &["lag_bytes"],
        &["subscriber"],
        "bytes",
    ),
    chart(
        "End-to-end lag",
        Metrics,
        "replication",
        &["heartbeat_age_s"],
        &["node"],
        "s",
    ),
    chart(
        "Lock waits",
        Metrics,
        "locks",
        &["waiting", "blocked"],
        &["node"],
        "backends",
    ),
    chart(
        "Errors by SQLSTATE",
        Logs,
        "pg_log",
        &["count"],
        &["sqlstate"],
        "lines",
    ),
    chart(
        "Deadlocks",
        Logs,
        "pg_deadlocks",
        &["count"],
        &["node"],
        "deadlocks",
    ),
    chart(
        "Lock waits (log)",
        Logs,
        "pg_lock_waits",
        &["count"],
        &["node"],
        "waits",
    ),
    chart(
        "Checkpoints",
        Logs,
        "pg_checkpoints",
        &["write_ms", "sync_ms"],
        &["node"],
        "ms",
    ),
    chart(
        "Slow statements",
        Logs,
        "pg_slow_statements",
        &["count"],
        &["node"],
        "statements",
    ),
    chart("Autovacuum", Logs, "pg_autovacuum", &["count"], &["node"], "runs"),
    chart(
        "Connection failures",
        Logs,
        "pg_connection_failures",
        &["count"],
        &["node"],
        "failures",
    ),
];

/// One line of a chart: its label and samples, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

impl Chart {
    /// The chart's lines from `series`, labelled by the `by` tags (and
    /// the field when the chart has several); empty when none match.
    pub fn lines(&self, series: &[Series]) -> Vec<Line> {
        let mut sums: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
        for s in series
            .iter()
            .filter(|s| s.measurement == self.measurement && self.fields.contains(&s.field.as_str()))
        {
            let sum = sums.entry(self.label(s)).or_default();
            for &(ts, v) in &s.points {
                *sum.entry(ts).or_default() += v;
            }
        }
        sums.into_iter()
            .map(|(label, points)| Line {
                label,
                points: points.into_iter().collect(),
            })
            .collect()
    }

    fn label(&self, s: &Series) -> String {
        let mut parts: Vec<&str> = self
            .by
            .iter()
            .map(|k| s.tags.get(*k).map_or("-", String::as_str))
            .collect();
        if self.fields.len() > 1 {
            parts.push(&s.field);
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(m: &str, field: &str, tags: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            measurement: m.into(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            field: field.into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn series_sharing_a_label_are_summed_and_others_left_out() {
        let all = [
            series(
                "pg_log",
                "count",
                &[("node", "a"), ("sqlstate", "23505")],
                &[(1, 1.0), (2, 2.0)],
            ),
            series(
                "pg_log",
                "count",
                &[("node", "b"), ("sqlstate", "23505")],
                &[(2, 3.0)],
            ),
            series(
                "pg_log",
                "count",
                &[("node", "a"), ("sqlstate", "22012")],
                &[(1, 1.0)],
            ),
            series("unknown", "count", &[("sqlstate", "23505")], &[(1, 9.0)]),
        ];
        let chart = CHARTS.iter().find(|c| c.measurement == "pg_log").unwrap();
        let lines = chart.lines(&all);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].label, "22012");
        assert_eq!(lines[1].label, "23505");
        assert_eq!(lines[1].points, vec![(1, 1.0), (2, 5.0)]);
    }

    #[test]
    fn a_chart_of_several_fields_names_the_field_in_each_label() {
        let all = [
            series("hum", "latency_p50_ms", &[("node", "publisher")], &[(1, 1.0)]),
            series("hum", "latency_p99_ms", &[("node", "publisher")], &[(1, 4.0)]),
            series("hum", "tps", &[("node", "publisher")], &[(1, 40.0)]),
        ];
        let chart = CHARTS.iter().find(|c| c.title == "Latency").unwrap();
        let labels: Vec<String> = chart.lines(&all).into_iter().map(|l| l.label).collect();
        assert_eq!(labels, ["publisher latency_p50_ms", "publisher latency_p99_ms"]);
    }
}
