//! `prodhome metrics`: sampled series from the embedded store, read
//! straight from `<state dir>/metrics.db` (WAL mode lets this run beside a
//! writing daemon, or after it stopped).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Result, anyhow};
use store::query::{Reader, Series};

use crate::cli::{MetricsArgs, MetricsFormat};
use crate::context::Context;

pub(crate) fn run(ctx: &Context, args: &MetricsArgs) -> Result<i32> {
    if let Some(node) = &args.node {
        ctx.check_node(node)?;
    }
    let reader = Reader::open(&ctx.state.metrics_db()).map_err(|e| anyhow!("{e}"))?;
    let measurements: Vec<String> = match &args.measurement {
        Some(m) => vec![m.clone()],
        None => reader
            .measurements()
            .map_err(|e| anyhow!("{e}"))?
            .into_iter()
            .map(|m| m.name)
            .collect(),
    };
    let since = model::now_ns() - args.since.as_nanos().min(i64::MAX as u128) as i64;
    let mut all = Vec::new();
    for m in &measurements {
        all.extend(
            reader
                .series(m, args.node.as_deref(), since, args.step)
                .map_err(|e| anyhow!("{e}"))?,
        );
    }
    if let (Some(m), true) = (&args.measurement, all.is_empty()) {
        let known = reader.measurements().map_err(|e| anyhow!("{e}"))?;
        if !known.iter().any(|k| &k.name == m) {
            let names: Vec<String> = known.into_iter().map(|k| k.name).collect();
            return Err(anyhow!(
                "no measurement \"{m}\" in the store; it has {}",
                if names.is_empty() {
                    "none yet".into()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    let mut out = std::io::stdout().lock();
    match args.format() {
        MetricsFormat::Table => table(&mut out, &all)?,
        MetricsFormat::Csv => csv(&mut out, &all)?,
        MetricsFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &all)?;
            writeln!(out)?;
        }
    }
    Ok(0)
}

/// One line per series: its latest value and the range over the window.
fn table(out: &mut impl Write, all: &[Series]) -> std::io::Result<()> {
    let rows: Vec<[String; 8]> = all
        .iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| {
            let values = s.points.iter().map(|p| p.1);
            let (min, max) = values
                .clone()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            let avg = values.sum::<f64>() / s.points.len() as f64;
            [
                s.measurement.clone(),
                s.tags.get("node").cloned().unwrap_or_else(|| "-".into()),
                Some(other_tags(&s.tags))
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "-".into()),
                s.field.clone(),
                number(s.points[s.points.len() - 1].1),
                number(min),
                number(avg),
                number(max),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(out, "no samples in this window (try a longer --since)")?;
        return Ok(());
    }
    let header = [
        "MEASUREMENT",
        "NODE",
        "TAGS",
        "FIELD",
        "LAST",
        "MIN",
        "AVG",
        "MAX",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Names left, numbers right.
            if i < 4 {
                text.push_str(&format!("{cell:<w$}  "));
            } else {
                text.push_str(&format!("{cell:>w$}  "));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    Ok(())
}

/// Every sample: `ts_ns,measurement,node,tags,field,value`.
fn csv(out: &mut impl Write, all: &[Series]) -> std::io::Result<()> {
    writeln!(out, "ts_ns,measurement,node,tags,field,value")?;
    for s in all {
        let node = csv_cell(s.tags.get("node").map(String::as_str).unwrap_or(""));
        let tags = csv_cell(&other_tags(&s.tags));
        let (measurement, field) = (csv_cell(&s.measurement), csv_cell(&s.field));
        for (ts, v) in &s.points {
            writeln!(out, "{ts},{measurement},{node},{tags},{field},{v}")?;
        }
    }
    Ok(())
}

/// Tags other than `node`, as `k=v k=v`.
fn other_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .filter(|(k, _)| *k != "node")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Whole numbers as such, others with three decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_numbers_read_well() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.12345), "0.123");
        let tags: BTreeMap<String, String> = [("node", "p"), ("mode", "ShareLock"), ("granted", "false")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(other_tags(&tags), "granted=false mode=ShareLock");
    }

    #[test]
    fn the_table_has_one_line_per_series_with_its_range() {
        let series = Series {
            measurement: "locks".into(),
            tags: [("node".to_string(), "publisher".to_string())].into(),
            field: "waiting".into(),
            points: vec![(1, 2.0), (2, 4.0), (3, 0.0)],
        };
        let mut out = Vec::new();
        table(&mut out, &[series]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("MEASUREMENT"), "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            ["locks", "publisher", "-", "waiting", "0", "0", "2", "4"],
            "{text}"
        );
    }
}
