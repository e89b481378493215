//! Turning stored series into what a panel draws: a [`Frame`] of columns
//! on one time axis, with series grouped by the panel's tags and summed
//! over the others. Also the parsing of `since` and `step`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use store::query::{Reader, Series};

use crate::catalogue::{Panel, Query};

/// One panel's data: a shared time axis (ms since the epoch, the page's
/// unit) and one column of values per series, `null` where a series has no
/// sample at that time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    pub t: Vec<i64>,
    pub series: Vec<Column>,
}

/// One series of a [`Frame`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    /// The legend: the query's alias and the values of its `by` tags.
    pub label: String,
    /// The values of the `by` tags.
    pub tags: BTreeMap<String, String>,
    /// Values as f32: plenty for a chart, and half the JSON.
    pub values: Vec<Option<f32>>,
}

/// Series being built for a panel: legend -> (the `by` tags, time -> sum).
type Groups = BTreeMap<String, (BTreeMap<String, String>, BTreeMap<i64, f64>)>;

/// Reads panels' data, asking the store once per measurement however
/// many panels read it.
pub(crate) struct Loader<'a> {
    reader: &'a Reader,
    since_ns: i64,
    step: Duration,
    cache: HashMap<&'static str, Vec<Series>>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(reader: &'a Reader, since_ns: i64, step: Duration) -> Self {
        Loader {
            reader,
            since_ns,
            step,
            cache: HashMap::new(),
        }
    }

    pub(crate) fn frame(&mut self, panel: &Panel) -> Result<Frame, store::Error> {
        let mut groups = Groups::new();
        for query in panel.queries {
            if !self.cache.contains_key(query.measurement) {
                let read = self
                    .reader
                    .series(query.measurement, None, self.since_ns, self.step)?;
                self.cache.insert(query.measurement, read);
            }
            group_into(&mut groups, query, &self.cache[query.measurement]);
        }
        Ok(to_frame(groups))
    }
}

/// Adds the series `query` selects into `groups`, summing the samples of
/// series that fall into one group at the same time.
fn group_into(groups: &mut Groups, query: &Query, all: &[Series]) {
    let selected = all.iter().filter(|s| {
        s.field == query.field
            && query
                .only
                .iter()
                .all(|(k, v)| s.tags.get(*k).map(String::as_str) == Some(*v))
    });
    for series in selected {
        let tags: BTreeMap<String, String> = query
            .by
            .iter()
            .filter_map(|k| series.tags.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        let label = label(query, &tags);
        let (_, sums) = groups.entry(label).or_insert_with(|| (tags, BTreeMap::new()));
        for &(ts, value) in &series.points {
            *sums.entry(ts).or_insert(0.0) += value;
        }
    }
}

fn label(query: &Query, tags: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !query.alias.is_empty() {
        parts.push(query.alias);
    }
    // In the order the panel lists its tags, not alphabetical.
    parts.extend(query.by.iter().filter_map(|k| tags.get(*k).map(String::as_str)));
    if parts.is_empty() {
        query.field.to_string()
    } else {
        parts.join(" ")
    }
}

fn to_frame(groups: Groups) -> Frame {
    let mut axis: Vec<i64> = groups.values().flat_map(|(_, s)| s.keys().copied()).collect();
    axis.sort_unstable();
    axis.dedup();
    let series = groups
        .into_iter()
        .map(|(label, (tags, sums))| Column {
            label,
            tags,
            values: axis.iter().map(|ts| sums.get(ts).map(|v| *v as f32)).collect(),
        })
        .collect();
    Frame {
        t: axis.iter().map(|ns| ns.div_euclid(1_000_000)).collect(),
        series,
    }
}

/// `since`: absent means the last 15 minutes; `all` (or 0) everything;
/// a bare integer a time in ns since the epoch (as `/api/events` takes);
/// a duration (`5m`, `90s`) that long before `now_ns`.
pub fn parse_since(text: Option<&str>, now_ns: i64) -> Result<i64, String> {
    let text = text.map(str::trim).unwrap_or("15m");
    if text == "all" {
        return Ok(0);
    }
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns.max(0));
    }
    let ago = parse_duration(text).map_err(|e| format!("since: {e}; or give `all` or a time in ns"))?;
    Ok(now_ns
        .saturating_sub(ago.as_nanos().min(i64::MAX as u128) as i64)
        .max(0))
}

/// A duration: a number with a unit (`ns`, `us`, `ms`, `s`, `m`, `h`,
/// `d`); a bare integer is nanoseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    model::parse_duration_in(text, Duration::from_nanos(1))
}

/// The steps a chart's buckets snap to, so that successive polls of a
/// range pick the same buckets and a refetch replaces them exactly.
const NICE_STEPS_S: &[u64] = &[
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
];

/// The smallest nice step that draws `span` in at most `points` buckets.
pub fn auto_step(span: Duration, points: u32) -> Duration {
    let wanted = span.as_secs_f64() / f64::from(points.max(1));
    let secs = NICE_STEPS_S
        .iter()
        .copied()
        .find(|&s| s as f64 >= wanted)
        .unwrap_or(86400);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Query;

    const S: i64 = 1_000_000_000;

    fn series(tags: &[(&str, &str)], field: &str, points: &[(i64, f64)]) -> Series {
        Series {
            measurement: "locks".into(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            field: field.into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn series_are_grouped_by_the_panel_tags_and_summed_over_the_rest() {
        let all = [
            series(
                &[("node", "p"), ("mode", "Share"), ("granted", "true")],
                "count",
                &[(S, 2.0), (2 * S, 3.0)],
            ),
            series(
                &[("node", "p"), ("mode", "Share"), ("granted", "false")],
                "count",
                &[(S, 1.0)],
            ),
            series(
                &[("node", "p"), ("mode", "Exclusive"), ("granted", "true")],
                "count",
                &[(2 * S, 4.0)],
            ),
            series(&[("node", "p")], "waiting", &[(S, 9.0)]),
        ];
        let query = Query {
            measurement: "locks",
            field: "count",
            by: &["node", "mode"],
            only: &[],
            alias: "",
        };
        let mut groups = BTreeMap::new();
        group_into(&mut groups, &query, &all);
        let frame = to_frame(groups);
        assert_eq!(frame.t, vec![1000, 2000]);
        let labels: Vec<&str> = frame.series.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["p Exclusive", "p Share"]);
        assert_eq!(frame.series[0].values, vec![None, Some(4.0)]);
        assert_eq!(frame.series[1].values, vec![Some(3.0), Some(3.0)]);
        assert_eq!(frame.series[1].tags["mode"], "Share");
    }

    #[test]
    fn only_and_alias_select_and_name_series() {
        let all = [
            series(&[("node", "p"), ("granted", "false")], "count", &[(S, 2.0)]),
            series(&[("node", "p"), ("granted", "true")], "count", &[(S, 5.0)]),
        ];
        let query = Query {
            measurement: "locks",
            field: "count",
            by: &["node"],
            only: &[("granted", "false")],
            alias: "waiting",
        };
        let mut groups = BTreeMap::new();
        group_into(&mut groups, &query, &all);
        let frame = to_frame(groups);
        assert_eq!(frame.series.len(), 1);
        assert_eq!(frame.series[0].label, "waiting p");
        assert_eq!(frame.series[0].values, vec![Some(2.0)]);
    }

    #[test]
    fn since_takes_durations_ns_and_all() {
        let now = 1_000 * S;
        assert_eq!(parse_since(Some("5m"), now), Ok(now - 300 * S));
        assert_eq!(parse_since(Some("all"), now), Ok(0));
        assert_eq!(parse_since(Some("12345"), now), Ok(12345));
        assert_eq!(parse_since(None, now), Ok(now - 900 * S));
        assert_eq!(parse_since(Some("1h"), 5), Ok(0));
        assert!(parse_since(Some("5 parsecs"), now).unwrap_err().contains("since"));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_nanos(250)));
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn auto_step_snaps_to_nice_steps() {
        assert_eq!(auto_step(Duration::from_secs(300), 360), Duration::from_secs(1));
        assert_eq!(auto_step(Duration::from_secs(3600), 360), Duration::from_secs(10));
        assert_eq!(auto_step(Duration::from_secs(3601), 360), Duration::from_secs(15));
        assert_eq!(
            auto_step(Duration::from_secs(10 * 86400 * 400), 360),
            Duration::from_secs(86400)
        );
    }
}
