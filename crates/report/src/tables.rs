//! The top errors (the log reader's `pg_log` counts) and the slowest
//! statements (`pg_slow_statements`), summed over the window. The log
//! reader's points count what it read since its previous point, so a
//! window's total is the sum of its points.

use std::collections::BTreeMap;

use crate::html::{self, Cell, number};
use crate::{Run, Series};

/// Rows in each table.
const TOP: usize = 15;

fn tag<'a>(s: &'a Series, key: &str) -> &'a str {
    s.tags.get(key).map_or("-", String::as_str)
}

fn sum(s: &Series) -> f64 {
    s.points.iter().map(|p| p.1).sum()
}

pub(crate) fn errors(page: &mut String, run: &Run) {
    html::section(page, "errors", "Top errors");
    let mut counts: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for s in run
        .series
        .iter()
        .filter(|s| s.measurement == "pg_log" && s.field == "count")
    {
        let key = (
            tag(s, "sqlstate").to_string(),
            tag(s, "severity").to_string(),
            tag(s, "node").to_string(),
        );
        *counts.entry(key).or_default() += sum(s);
    }
    let mut rows: Vec<((String, String, String), f64)> =
        counts.into_iter().filter(|(_, n)| *n > 0.0).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if rows.is_empty() {
        html::muted(
            page,
            "No log data: no errors or warnings counted from Postgres's logs in this window.",
        );
    } else {
        let cells: Vec<Vec<Cell>> = rows
            .into_iter()
            .take(TOP)
            .map(|((sqlstate, severity, node), n)| {
                vec![
                    Cell::Code(sqlstate),
                    Cell::Text(severity),
                    Cell::Text(node),
                    Cell::Num(number(n)),
                ]
            })
            .collect();
        html::table(page, &["SQLSTATE", "severity", "node", "lines"], &cells);
    }
    html::end(page);
}

/// A statement's totals over the window.
#[derive(Default)]
struct Slow {
    count: f64,
    total_ms: f64,
    max_ms: f64,
}

pub(crate) fn slow(page: &mut String, run: &Run) {
    html::section(page, "slow", "Slow statements");
    let mut by: BTreeMap<(String, String), Slow> = BTreeMap::new();
    for s in run
        .series
        .iter()
        .filter(|s| s.measurement == "pg_slow_statements")
    {
        let key = (tag(s, "query").to_string(), tag(s, "node").to_string());
        let slow = by.entry(key).or_default();
        match s.field.as_str() {
            "count" => slow.count += sum(s),
            "total_ms" => slow.total_ms += sum(s),
            "max_ms" => slow.max_ms = s.points.iter().map(|p| p.1).fold(slow.max_ms, f64::max),
            _ => {}
        }
    }
    let mut rows: Vec<((String, String), Slow)> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.total_ms.total_cmp(&a.1.total_ms).then_with(|| a.0.cmp(&b.0)));
    if rows.is_empty() {
        html::muted(page, "No log data: no slow statements logged in this window.");
    } else {
        let cells: Vec<Vec<Cell>> = rows
            .into_iter()
            .take(TOP)
            .map(|((query, node), s)| {
                vec![
                    Cell::Code(query),
                    Cell::Text(node),
                    Cell::Num(number(s.count)),
                    Cell::Num(number(s.total_ms)),
                    Cell::Num(number(s.max_ms)),
                ]
            })
            .collect();
        html::table(
            page,
            &["statement", "node", "count", "total ms", "max ms"],
            &cells,
        );
    }
    html::end(page);
}
