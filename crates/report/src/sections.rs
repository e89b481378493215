//! The page's sections, top to bottom (the tables of top errors and slow
//! statements are in `tables`).

use std::collections::BTreeMap;
use std::fmt::Write;

use model::{Event, EventKind};

use crate::charts::{CHARTS, Chart, Group};
use crate::html::{self, Cell, escape};
use crate::svg::{self, Lane};
use crate::{LabInfo, Run, time};

/// The most events listed under the timeline (the timeline draws them all).
const MAX_LISTED: usize = 300;

pub(crate) fn header(page: &mut String, run: &Run) {
    let _ = writeln!(
        page,
        "<header><h1>Lab {}</h1><p>{} to {} ({}), {} events, {} series.</p></header>",
        escape(&run.lab.name),
        time::full(run.since_ns),
        time::full(run.until_ns),
        time::span(run.until_ns - run.since_ns),
        run.events.len(),
        run.series.len()
    );
    for note in &run.notes {
        html::muted(page, note);
    }
}

pub(crate) fn lab(page: &mut String, lab: &LabInfo) {
    html::section(page, "lab", "The lab");
    let nodes: Vec<Vec<Cell>> = lab
        .nodes
        .iter()
        .map(|n| {
            let settings: Vec<String> = n.settings.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            vec![
                Cell::Text(n.name.clone()),
                Cell::Num(n.port.map_or("auto".into(), |p| p.to_string())),
                Cell::Code(settings.join("\n")),
            ]
        })
        .collect();
    html::table(page, &["node", "port", "settings"], &nodes);
    if lab.replications.is_empty() {
        html::muted(page, "No replications.");
    } else {
        let rows: Vec<Vec<Cell>> = lab
            .replications
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.name.clone()),
                    Cell::Text(r.publisher.clone()),
                    Cell::Text(r.subscribers.join(", ")),
                    Cell::Code(r.tables.clone()),
                ]
            })
            .collect();
        html::table(
            page,
            &["replication", "publisher", "subscribers", "tables"],
            &rows,
        );
    }
    if lab.services.is_empty() {
        html::muted(page, "No services.");
    } else {
        let rows: Vec<Vec<Cell>> = lab
            .services
            .iter()
            .map(|s| vec![Cell::Text(s.name.clone()), Cell::Code(s.command.clone())])
            .collect();
        html::table(page, &["service", "command"], &rows);
    }
    html::end(page);
}

/// Hum's settings and runs, the faults applied and the migrations.
pub(crate) fn ran(page: &mut String, run: &Run) {
    html::section(page, "ran", "What ran");
    page.push_str("<h3>Hum</h3>\n");
    match &run.lab.hum {
        None => html::muted(page, "The lab has no [hum]: no background traffic of its own."),
        Some(settings) => {
            let rows: Vec<Vec<Cell>> = settings
                .iter()
                .map(|(k, v)| vec![Cell::Text(k.clone()), Cell::Code(v.clone())])
                .collect();
            html::table(page, &["setting", "value"], &rows);
        }
    }
    let hum: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Hum { .. }))
        .collect();
    event_list(page, &hum, "No hum events in this window.");
    page.push_str("<h3>Faults</h3>\n");
    let faults = fault_spans(run);
    if faults.is_empty() {
        html::muted(page, "No faults applied in this window.");
    } else {
        let rows: Vec<Vec<Cell>> = faults
            .iter()
            .map(|f| {
                vec![
                    Cell::Text(f.what.clone()),
                    Cell::Text(time::clock(f.from)),
                    Cell::Text(f.to.map_or("still on".into(), time::clock)),
                    Cell::Num(time::span(f.to.unwrap_or(run.until_ns) - f.from)),
                ]
            })
            .collect();
        html::table(page, &["fault", "on", "off", "for"], &rows);
    }
    migrations(page, run);
    html::end(page);
}

fn migrations(page: &mut String, run: &Run) {
    page.push_str("<h3>Migrations and DDL</h3>\n");
    let changes: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Migration { .. } | EventKind::DdlApplied { .. } | EventKind::DdlFailed { .. }
            )
        })
        .collect();
    event_list(page, &changes, "No migrations or DDL in this window.");
}

/// A table of events: time, unit, kind, what happened.
fn event_list(page: &mut String, events: &[&Event], none: &str) {
    if events.is_empty() {
        return html::muted(page, none);
    }
    let rows: Vec<Vec<Cell>> = events
        .iter()
        .take(MAX_LISTED)
        .map(|e| {
            let text = e.to_string();
            let detail = text.strip_prefix(&format!("{}: ", e.unit)).unwrap_or(&text);
            vec![
                Cell::Text(time::clock(e.ts_ns)),
                Cell::Text(e.unit.clone()),
                Cell::Text(e.kind.name().into()),
                Cell::Code(detail.to_string()),
            ]
        })
        .collect();
    html::table(page, &["time (UTC)", "unit", "kind", "what"], &rows);
    if events.len() > MAX_LISTED {
        html::muted(page, &format!("and {} more", events.len() - MAX_LISTED));
    }
}

/// A fault from on to off (`None`: still on at the window's end).
pub(crate) struct FaultSpan {
    pub(crate) what: String,
    pub(crate) from: i64,
    pub(crate) to: Option<i64>,
}

/// Fault events paired on → off by fault and target, in order of start.
/// An "off" without its "on" (the fault began before the window) starts
/// at the window's start.
pub(crate) fn fault_spans(run: &Run) -> Vec<FaultSpan> {
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut spans: Vec<FaultSpan> = Vec::new();
    for e in &run.events {
        let EventKind::Fault { fault, target, phase } = &e.kind else {
            continue;
        };
        let key = (fault.clone(), target.clone());
        if phase == "on" {
            open.insert(key, spans.len());
            spans.push(FaultSpan {
                what: format!("{fault} {target}"),
                from: e.ts_ns,
                to: None,
            });
        } else if let Some(i) = open.remove(&key) {
            spans[i].to = Some(e.ts_ns);
        } else {
            spans.push(FaultSpan {
                what: format!("{fault} {target}"),
                from: run.since_ns,
                to: Some(e.ts_ns),
            });
        }
    }
    spans.sort_by_key(|s| s.from);
    spans
}

pub(crate) fn charts(page: &mut String, run: &Run) {
    html::section(page, "charts", "Charts");
    let drawn = grid(page, run, Group::Metrics);
    if drawn == 0 {
        html::muted(page, "No samples from hum or the sampler in this window.");
    }
    html::end(page);
}

/// The log reader's series; says so when there are none.
pub(crate) fn logs(page: &mut String, run: &Run) {
    html::section(page, "logs", "Postgres's logs");
    let drawn = grid(page, run, Group::Logs);
    if drawn == 0 {
        html::muted(
            page,
            "No log data in this window: the store has no series from the log reader \
             (pg_log, pg_deadlocks, pg_checkpoints, pg_slow_statements, …).",
        );
    }
    html::end(page);
}

/// Draws the group's charts that have data; returns how many.
fn grid(page: &mut String, run: &Run, group: Group) -> usize {
    let charts: Vec<(&Chart, Vec<crate::charts::Line>)> = CHARTS
        .iter()
        .filter(|c| c.group == group)
        .map(|c| (c, c.lines(&run.series)))
        .filter(|(_, lines)| !lines.is_empty())
        .collect();
    if charts.is_empty() {
        return 0;
    }
    page.push_str("<div class=\"grid\">\n");
    for (chart, lines) in &charts {
        let _ = writeln!(
            page,
            "<figure class=\"chart\"><figcaption>{} <span class=\"muted\">({})</span></figcaption>{}</figure>",
            escape(chart.title),
            escape(chart.unit),
            svg::line_chart(lines, run.since_ns, run.until_ns, chart.unit)
        );
    }
    page.push_str("</div>\n");
    charts.len()
}

/// The timeline's lane for an event kind, by name, so kinds added later
/// (the log reader's) find a lane too.
fn lane_of(kind: &str) -> usize {
    match kind {
        "fault" => 0,
        "migration" | "ddl_applied" | "ddl_failed" => 1,
        "hum" => 2,
        "verdict" => 3,
        "replication_error" | "replication_recovered" => 4,
        "deadlock" | "lock_wait" | "slow_statement" | "log_error" => 5,
        "started" | "adopted" | "ready" | "not_ready" | "exited" | "restarting" | "gave_up"
        | "probe_failed" | "crash_loop" | "lab" => 6,
        _ => 7,
    }
}

const LANES: [(&str, &str); 8] = [
    ("faults", "#d62728"),
    ("migrations", "#9467bd"),
    ("hum", "#2ca02c"),
    ("verdicts", "#ff7f0e"),
    ("replication", "#8c564b"),
    ("logs", "#e377c2"),
    ("units", "#1f77b4"),
    ("other", "#7f7f7f"),
];

pub(crate) fn timeline(page: &mut String, run: &Run) {
    html::section(page, "timeline", "Timeline");
    let mut lanes: Vec<Lane> = LANES
        .iter()
        .map(|(name, color)| Lane {
            name: (*name).into(),
            color,
            ..Lane::default()
        })
        .collect();
    for f in fault_spans(run) {
        lanes[0]
            .spans
            .push((f.from, f.to.unwrap_or(run.until_ns), f.what));
    }
    migration_spans(run, &mut lanes[1]);
    for e in &run.events {
        let lane = lane_of(e.kind.name());
        if !matches!(e.kind, EventKind::Fault { .. } | EventKind::Migration { .. }) {
            lanes[lane]
                .marks
                .push((e.ts_ns, format!("{} {e}", time::clock(e.ts_ns))));
        }
    }
    page.push_str(&svg::timeline(&lanes, run.since_ns, run.until_ns));
    let all: Vec<&Event> = run.events.iter().collect();
    event_list(page, &all, "No events in this window.");
    html::end(page);
}

/// Migrations as spans from "started" to "finished"/"failed" (per unit
/// and file); one still running reaches the window's end.
fn migration_spans(run: &Run, lane: &mut Lane) {
    let mut open: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in &run.events {
        let EventKind::Migration { phase, file } = &e.kind else {
            continue;
        };
        let key = (e.unit.clone(), file.clone());
        if phase == "started" {
            open.insert(key, e.ts_ns);
        } else {
            let from = open.remove(&key).unwrap_or(run.since_ns);
            lane.spans
                .push((from, e.ts_ns, format!("{file} on {}: {phase}", e.unit)));
        }
    }
    for ((unit, file), from) in open {
        lane.spans
            .push((from, run.until_ns, format!("{file} on {unit}: running")));
    }
}

pub(crate) fn verdicts(page: &mut String, run: &Run) {
    html::section(page, "verdicts", "Verdicts");
    let rows: Vec<Vec<Cell>> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Verdict { command, ok, summary } => Some(vec![
                Cell::Text(time::clock(e.ts_ns)),
                Cell::Text(command.clone()),
                Cell::Raw(if *ok {
                    "<span class=\"ok\">pass</span>".into()
                } else {
                    "<span class=\"bad\">FAIL</span>".into()
                }),
                Cell::Text(summary.clone()),
            ]),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        html::muted(
            page,
            "No verify or soak verdict in this window (run `prodhome verify` or `prodhome soak`).",
        );
    } else {
        html::table(page, &["time (UTC)", "command", "verdict", "summary"], &rows);
    }
    html::end(page);
}
