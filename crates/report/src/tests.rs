//! The page as a whole: every section, escaping, and empty data.

use model::{Event, EventKind};

use super::*;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_796_161_565 * S;

fn event(at_s: i64, unit: &str, kind: EventKind) -> Event {
    Event {
        ts_ns: T0 + at_s * S,
        unit: unit.into(),
        kind,
    }
}

fn series(m: &str, field: &str, tags: &[(&str, &str)], values: &[f64]) -> Series {
    Series {
        measurement: m.into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        field: field.into(),
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| (T0 + i as i64 * 10 * S, *v))
            .collect(),
    }
}

fn fault(at_s: i64, phase: &str) -> Event {
    event(
        at_s,
        "lab",
        EventKind::Fault {
            fault: "pause".into(),
            target: "subscriber1".into(),
            phase: phase.into(),
        },
    )
}

fn lab() -> LabInfo {
    LabInfo {
        name: "shop".into(),
        nodes: vec![NodeInfo {
            name: "publisher".into(),
            port: Some(5433),
            settings: vec![("work_mem".into(), "'8MB'".into())],
        }],
        replications: vec![ReplicationInfo {
            name: "books".into(),
            publisher: "publisher".into(),
            subscribers: vec!["subscriber1".into()],
            tables: "books".into(),
        }],
        services: vec![],
        hum: Some(vec![
            ("workload".into(), "books".into()),
            ("rate".into(), "50".into()),
        ]),
    }
}

/// A run with something in every section.
fn full_run() -> Run {
    let verdict = EventKind::Verdict {
        command: "verify".into(),
        ok: true,
        summary: "1 replication converged".into(),
    };
    Run {
        lab: lab(),
        since_ns: T0,
        until_ns: T0 + 60 * S,
        series: vec![
            series("hum", "tps", &[("node", "publisher")], &[40.0, 50.0, 45.0]),
            series(
                "replication",
                "lag_bytes",
                &[("subscriber", "subscriber1")],
                &[0.0, 9e6, 0.0],
            ),
            series(
                "pg_log",
                "count",
                &[
                    ("node", "publisher"),
                    ("severity", "ERROR"),
                    ("sqlstate", "23505"),
                ],
                &[2.0, 3.0],
            ),
            series(
                "pg_log",
                "count",
                &[
                    ("node", "publisher"),
                    ("severity", "ERROR"),
                    ("sqlstate", "22012"),
                ],
                &[1.0],
            ),
            series(
                "pg_slow_statements",
                "total_ms",
                &[("node", "publisher"), ("query", "select pg_sleep($1)")],
                &[700.0, 300.0],
            ),
            series(
                "pg_slow_statements",
                "count",
                &[("node", "publisher"), ("query", "select pg_sleep($1)")],
                &[1.0, 1.0],
            ),
        ],
        events: vec![
            event(
                1,
                "lab",
                EventKind::Hum {
                    phase: "started".into(),
                },
            ),
            fault(10, "on"),
            fault(20, "off"),
            event(
                30,
                "publisher",
                EventKind::Migration {
                    phase: "started".into(),
                    file: "add_index.sql".into(),
                },
            ),
            event(
                35,
                "publisher",
                EventKind::Migration {
                    phase: "finished".into(),
                    file: "add_index.sql".into(),
                },
            ),
            event(50, "lab", verdict),
        ],
        notes: vec![],
    }
}

const SECTIONS: [&str; 9] = [
    "lab", "ran", "charts", "logs", "timeline", "errors", "slow", "verdicts", "</html>",
];

#[test]
fn a_full_run_has_every_section_with_its_data() {
    let page = render(&full_run());
    for id in SECTIONS.iter().filter(|s| !s.starts_with('<')) {
        assert!(
            page.contains(&format!("<section id=\"{id}\">")),
            "no section {id}"
        );
    }
    assert!(page.ends_with("</html>\n"));
    // Charts: tps and lag drawn, the log's errors by SQLSTATE too.
    assert!(
        page.contains("Throughput") && page.contains("Replication lag"),
        "{page}"
    );
    assert!(
        page.contains("Errors by SQLSTATE") && !page.contains("No log data"),
        "{page}"
    );
    // The fault is a span on the timeline and a row with its duration.
    assert_eq!(
        page.matches("class=\"span\"").count(),
        2,
        "fault + migration spans"
    );
    assert!(
        page.contains("<td>pause subscriber1</td>") && page.contains(">10.0s<"),
        "{page}"
    );
    // Top errors sorted by count, slow statements summed.
    let errors = &page[page.find("<section id=\"errors\">").unwrap()..];
    let (a, b) = (errors.find(">23505<").unwrap(), errors.find(">22012<").unwrap());
    assert!(a < b, "the commoner error comes first");
    assert!(
        page.contains("<td class=\"n\">1000</td>"),
        "total ms summed: {page}"
    );
    assert!(page.contains("<span class=\"ok\">pass</span>"));
    assert!(page.contains("<td>workload</td><td><code>books</code></td>"));
}

#[test]
fn user_data_is_escaped_everywhere() {
    let evil = "<img src=x onerror=alert(1)>\"'&";
    let mut run = full_run();
    run.lab.name = evil.into();
    run.lab.nodes[0]
        .settings
        .push(("search_path".into(), evil.into()));
    run.lab.replications[0].tables = evil.into();
    run.series.push(series(
        "pg_slow_statements",
        "total_ms",
        &[("node", "publisher"), ("query", evil)],
        &[5.0],
    ));
    run.series.push(series(
        "pg_log",
        "count",
        &[("node", evil), ("sqlstate", evil)],
        &[5.0],
    ));
    run.events.push(event(
        40,
        "subscriber1",
        EventKind::DdlFailed {
            subscriber: "subscriber1".into(),
            statement: evil.into(),
            message: evil.into(),
        },
    ));
    run.events.push(event(
        41,
        "lab",
        EventKind::Verdict {
            command: "soak".into(),
            ok: false,
            summary: evil.into(),
        },
    ));
    let page = render(&run);
    assert!(!page.contains("<img"), "unescaped markup in the page");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"));
    // Markup the page makes itself is intact.
    assert!(page.contains("<span class=\"bad\">FAIL</span>"));
}

#[test]
fn an_empty_run_says_what_is_missing_and_names_no_url() {
    let run = Run {
        lab: LabInfo {
            name: "empty".into(),
            ..LabInfo::default()
        },
        since_ns: T0,
        until_ns: T0 + S,
        ..Run::default()
    };
    let page = render(&run);
    for id in SECTIONS.iter().filter(|s| !s.starts_with('<')) {
        assert!(
            page.contains(&format!("<section id=\"{id}\">")),
            "no section {id}"
        );
    }
    for text in [
        "No samples from hum or the sampler",
        "No log data in this window",
        "No faults applied",
        "No verify or soak verdict",
        "The lab has no [hum]",
    ] {
        assert!(page.contains(text), "missing {text:?}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(!render(&full_run()).contains("http"));
}

#[test]
fn a_fault_still_on_reaches_the_end_and_an_off_without_on_starts_at_the_start() {
    let mut run = full_run();
    run.events = vec![fault(5, "off"), fault(30, "on")];
    let spans = sections::fault_spans(&run);
    assert_eq!(spans.len(), 2);
    assert_eq!((spans[0].from, spans[0].to), (T0, Some(T0 + 5 * S)));
    assert_eq!((spans[1].from, spans[1].to), (T0 + 30 * S, None));
    assert!(render(&run).contains("still on"));
}
