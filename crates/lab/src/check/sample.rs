//! Checking `[sample]`: interval and retention, the sinks and their
//! settings, and the custom queries.

use std::time::Duration;

use toml::Spanned;

use super::{Checker, NAME_MAX};
use crate::Problem;
use crate::plan::{InfluxPlan, QueryPlan, SamplePlan};
use crate::raw::{RawInflux, RawQuery, RawSample, Single};

const SINKS: &[&str] = &["embedded", "influx", "prometheus"];

impl Checker<'_> {
    pub(super) fn sample(&mut self, section: &Single<RawSample>) -> Option<SamplePlan> {
        let raw = &section.body;
        let defaults = SamplePlan::default();
        let interval = self.duration("sample.interval", raw.interval.as_ref(), defaults.interval, 0.01);
        let retention = self.duration(
            "sample.retention",
            raw.retention.as_ref(),
            defaults.retention,
            60.0,
        );
        let mut sinks = vec!["embedded".to_string()];
        let mut ok = true;
        if let Some(list) = &raw.sinks {
            sinks.clear();
            for (i, sink) in list.get_ref().iter().enumerate() {
                let name = sink.get_ref();
                let item = format!("sample.sinks[{i}]");
                if !SINKS.contains(&name.as_str()) {
                    let message = format!("{item}: unknown sink {name:?}; sinks are {}", SINKS.join(", "));
                    self.problems.push(Problem::new(sink.span(), message));
                    ok = false;
                } else if sinks.contains(name) {
                    self.problems.push(Problem::new(
                        sink.span(),
                        format!("{item}: {name:?} is listed twice"),
                    ));
                    ok = false;
                } else {
                    sinks.push(name.clone());
                }
            }
        }
        let wants_influx = sinks.iter().any(|s| s == "influx");
        let influx =
            match (&raw.influx, wants_influx) {
                (Some(influx), true) => self.influx(influx),
                (None, true) if !section.failed.iter().any(|k| k == "influx") => {
                    let at = raw
                        .sinks
                        .as_ref()
                        .map(|s| s.span())
                        .unwrap_or(section.span.clone());
                    let message = "sample.sinks: \"influx\" needs an [sample.influx] section with its url";
                    self.problems.push(Problem::new(at, message).help(
                        "add [sample.influx] with url and db (v1), or url, org, bucket, token_env (v2)",
                    ));
                    None
                }
                (Some(influx), false) => {
                    let message = "sample.influx: set, but \"influx\" is not in sample.sinks";
                    self.problems.push(
                        Problem::new(influx.span(), message)
                            .help("add \"influx\" to sinks, or remove [sample.influx]"),
                    );
                    None
                }
                (None, _) => None,
            };
        let mut queries = Vec::new();
        for (i, query) in raw.query.iter().flatten().enumerate() {
            match self.query(i, query, &queries) {
                Some(q) => queries.push(q),
                None => ok = false,
            }
        }
        if !ok || (wants_influx && influx.is_none()) {
            return None;
        }
        Some(SamplePlan {
            interval: interval?,
            retention: retention?,
            embedded: sinks.iter().any(|s| s == "embedded"),
            prometheus: sinks.iter().any(|s| s == "prometheus"),
            influx,
            queries,
        })
    }

    /// An optional duration of at least `min_s` seconds.
    fn duration(
        &mut self,
        path: &str,
        value: Option<&Spanned<String>>,
        default: Duration,
        min_s: f64,
    ) -> Option<Duration> {
        let d = self.duration_or(path, value, default)?;
        if let Some(value) = value.filter(|_| d.as_secs_f64() < min_s) {
            let message = format!(
                "{path}: {:?} is too short; the least is {min_s} s",
                value.get_ref()
            );
            self.problems.push(Problem::new(value.span(), message));
            return None;
        }
        Some(d)
    }

    fn influx(&mut self, influx: &Spanned<RawInflux>) -> Option<InfluxPlan> {
        let raw = influx.get_ref();
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        let url = match &raw.url {
            Some(url) if url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://") => {
                url.get_ref().trim_end_matches('/').to_string()
            }
            Some(url) => {
                let message = format!(
                    "sample.influx.url: expected an http:// or https:// URL, found {:?}",
                    url.get_ref()
                );
                self.problems.push(Problem::new(url.span(), message));
                return None;
            }
            None => {
                let message = "sample.influx: missing `url`, e.g. url = \"http://127.0.0.1:8086\"";
                self.problems.push(Problem::new(influx.span(), message));
                return None;
            }
        };
        match (
            text(&raw.db),
            text(&raw.org),
            text(&raw.bucket),
            text(&raw.token_env),
        ) {
            (Some(db), None, None, None) => Some(InfluxPlan::V1 {
                url,
                db,
                create_database: raw.create_database.as_ref().is_none_or(|c| *c.get_ref()),
            }),
            (None, Some(_), Some(_), Some(_)) if raw.create_database.is_some() => {
                let span = raw.create_database.as_ref().map_or(influx.span(), |c| c.span());
                self.problems.push(
                    Problem::new(span, "sample.influx.create_database: only for InfluxDB 1.x (`db`); a 2.x bucket is not created by prodhome")
                        .help("create the bucket with `influx bucket create`, and remove create_database"),
                );
                None
            }
            (None, Some(org), Some(bucket), Some(token_env)) => Some(InfluxPlan::V2 {
                url,
                org,
                bucket,
                token_env,
            }),
            _ => {
                self.problems.push(
                    Problem::new(influx.span(), "sample.influx: expected either `db` (InfluxDB 1.x) or `org`, `bucket` and `token_env` (2.x)")
                        .help("token_env names the environment variable holding the API token, so the token stays out of the lab file"),
                );
                None
            }
        }
    }

    fn query(&mut self, i: usize, query: &Spanned<RawQuery>, earlier: &[QueryPlan]) -> Option<QueryPlan> {
        let path = format!("sample.query[{i}]");
        let raw = query.get_ref();
        let missing = |key: &str, problems: &mut Vec<Problem>| {
            problems.push(Problem::new(query.span(), format!("{path}: missing `{key}`")));
        };
        let name = match &raw.name {
            Some(name) => {
                let checked = self.name(&format!("{path}.name"), "query name", name, NAME_MAX);
                if checked
                    .as_ref()
                    .is_some_and(|n| earlier.iter().any(|q| &q.name == n))
                {
                    let message = format!("{path}.name: {:?} is used by another query", name.get_ref());
                    self.problems.push(Problem::new(name.span(), message));
                    return None;
                }
                checked
            }
            None => {
                missing("name", &mut self.problems);
                None
            }
        };
        let sql = match &raw.sql {
            Some(sql) if !sql.get_ref().trim().is_empty() => Some(sql.get_ref().clone()),
            Some(sql) => {
                self.problems
                    .push(Problem::new(sql.span(), format!("{path}.sql: empty")));
                None
            }
            None => {
                missing("sql", &mut self.problems);
                None
            }
        };
        let nodes = match &raw.nodes {
            None => Some(Vec::new()),
            Some(list) => {
                let found: Vec<Option<String>> = list
                    .get_ref()
                    .0
                    .iter()
                    .enumerate()
                    .map(|(j, n)| self.node_ref(&format!("{path}.nodes[{j}]"), n))
                    .collect();
                found.into_iter().collect::<Option<Vec<_>>>()
            }
        };
        let columns = |v: &Option<Spanned<Vec<Spanned<String>>>>| {
            v.as_ref().map(|l| {
                l.get_ref()
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect::<Vec<_>>()
            })
        };
        let tags = columns(&raw.tags).unwrap_or_default();
        let fields = columns(&raw.fields).unwrap_or_default();
        if fields.is_empty() {
            let at = raw.fields.as_ref().map(|f| f.span()).unwrap_or(query.span());
            self.problems.push(
                Problem::new(at, format!("{path}.fields: expected at least one numeric result column"))
                    .help("fields = [\"COLUMN\", …] name the columns sampled as values; tags = [...] the ones that label them"),
            );
            return None;
        }
        Some(QueryPlan {
            name: name?,
            nodes: nodes?,
            sql: sql?,
            tags,
            fields,
        })
    }
}
