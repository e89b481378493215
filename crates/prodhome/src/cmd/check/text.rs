//! The resolved lab for a person: one section per part, in the order `up`
//! brings them up. Reads only the [`Report`], so the text can never show
//! what the JSON leaves out (secrets).

use std::fmt::Write;

use super::report::{LabOut, PortOut, RateOut, Report, TablesOut};

/// The text for a valid report.
pub(crate) fn render(report: &Report) -> String {
    let Some(lab) = &report.lab else {
        return String::new();
    };
    let mut out = String::new();
    let source = match &report.file {
        Some(file) => file.clone(),
        None => "the built-in seed lab".to_string(),
    };
    line(&mut out, 0, format!("lab {} is valid ({source})", lab.name));
    line(
        &mut out,
        1,
        format!(
            "postgres {}, seed {}, state in {}",
            lab.postgres_version, lab.seed, lab.state_dir
        ),
    );
    if let Some(account) = &lab.run_as {
        line(
            &mut out,
            1,
            format!("servers run as {account} when prodhome runs as root"),
        );
    }
    line(&mut out, 1, format!("control API port {}", port(&lab.api_port)));
    nodes(&mut out, lab);
    replications(&mut out, lab);
    start_order(&mut out, lab);
    services(&mut out, lab);
    rest(&mut out, lab);
    out
}

fn line(out: &mut String, indent: usize, text: impl AsRef<str>) {
    let _ = writeln!(out, "{:width$}{}", "", text.as_ref(), width = indent * 2);
}

fn port(p: &PortOut) -> String {
    match (p.mode, p.port) {
        ("fixed", Some(n)) => n.to_string(),
        ("kept", Some(n)) => format!("{n} (kept from an earlier up, in ports.json)"),
        _ => "auto (a free one, chosen by up and kept)".to_string(),
    }
}

fn nodes(out: &mut String, lab: &LabOut) {
    line(out, 0, "nodes");
    let width = lab.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    for node in &lab.nodes {
        line(out, 1, format!("{:width$}  port {}", node.name, port(&node.port)));
        for (name, value) in &node.settings {
            line(out, 2, format!("{name} = {value}"));
        }
    }
}

fn replications(out: &mut String, lab: &LabOut) {
    if lab.replications.is_empty() {
        return;
    }
    line(out, 0, "replication");
    for r in &lab.replications {
        let tables = match &r.tables {
            TablesOut::All(_) => "all tables".to_string(),
            TablesOut::List(list) => format!("tables {}", list.join(", ")),
        };
        let schema = r
            .schema
            .as_ref()
            .map_or(String::new(), |s| format!("; schema {s}"));
        let to = r.subscribers.join(", ");
        line(
            out,
            1,
            format!("{}: {} -> {to}; {tables}{schema}", r.name, r.publisher),
        );
    }
}

fn start_order(out: &mut String, lab: &LabOut) {
    line(out, 0, "start order");
    let nodes = lab.start_order.nodes.join(", ");
    line(out, 1, format!("1. nodes {nodes}, then replication"));
    for (i, wave) in lab.start_order.services.iter().enumerate() {
        line(out, 1, format!("{}. {}", i + 2, wave.join(", ")));
    }
}

fn services(out: &mut String, lab: &LabOut) {
    if lab.services.is_empty() {
        return;
    }
    line(out, 0, "services");
    for s in &lab.services {
        line(
            out,
            1,
            format!("{}: {} (in {})", s.name, s.command.join(" "), s.workdir),
        );
        if s.runs != "native" {
            line(out, 2, format!("in a container: {}", s.runs));
        }
        if !s.depends_on.is_empty() {
            let deps: Vec<String> = s.depends_on.iter().map(|(d, c)| format!("{d} {c}")).collect();
            line(out, 2, format!("waits for {}", deps.join(", ")));
        }
        for (what, probe) in [("ready", &s.ready), ("live", &s.live)] {
            if let Some(probe) = probe {
                line(out, 2, format!("{what}: {probe}"));
            }
        }
        line(
            out,
            2,
            format!(
                "restart {} (crash loop after {}); stop with {}, then SIGKILL after {}",
                s.restart, s.max_restarts, s.stop_signal, s.stop_timeout
            ),
        );
        for (key, value) in &s.env {
            line(out, 2, format!("env {key}={value}"));
        }
    }
}

/// Hum, sampling, chaos, alerts and secrets: what runs beside the lab.
fn rest(out: &mut String, lab: &LabOut) {
    hum(out, lab);
    sample(out, lab);
    if !lab.chaos.is_empty() {
        line(out, 0, "chaos");
        for c in &lab.chaos {
            let params = if c.params.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.params)
            };
            let targets = c.targets.join(" | ");
            line(
                out,
                1,
                format!(
                    "{} {targets} for {} every {}{params}",
                    c.fault, c.duration, c.every
                ),
            );
        }
    }
    alert(out, lab);
    if !lab.secrets.is_empty() {
        line(out, 0, "secrets (generated by the first up)");
        for secret in &lab.secrets {
            line(out, 1, format!("{} = {}", secret.name, secret.value));
        }
    }
}

fn hum(out: &mut String, lab: &LabOut) {
    if let Some(h) = &lab.hum {
        let rate = match h.rate {
            RateOut::PerSecond(r) => format!("{r} tx/s"),
            RateOut::Max(_) => "as fast as it goes".to_string(),
        };
        line(out, 0, "hum");
        line(
            out,
            1,
            format!("{} on {}: {} clients, {rate}", h.workload, h.node, h.clients),
        );
        if !h.read_from.is_empty() {
            line(out, 1, format!("reads from {}", h.read_from.join(", ")));
        }
    }
}

fn sample(out: &mut String, lab: &LabOut) {
    let s = &lab.sample;
    line(out, 0, "sample");
    line(
        out,
        1,
        format!(
            "every {} into {}; kept {}",
            s.interval,
            s.sinks.join(", "),
            s.retention
        ),
    );
    if let Some(i) = &s.influx {
        let target = match (&i.db, &i.org, &i.bucket) {
            (Some(db), _, _) => format!("db {db}"),
            (_, Some(org), Some(bucket)) => format!("org {org}, bucket {bucket}"),
            _ => String::new(),
        };
        let token = match (&i.token_env, i.token) {
            (Some(var), Some(hidden)) => format!("; token from ${var} ({hidden})"),
            _ => String::new(),
        };
        line(out, 1, format!("influx v{} {} {target}{token}", i.version, i.url));
    }
    for q in &s.queries {
        let on = if q.nodes.is_empty() {
            "every node".to_string()
        } else {
            q.nodes.join(", ")
        };
        line(out, 1, format!("query {} on {on}", q.name));
    }
}

fn alert(out: &mut String, lab: &LabOut) {
    if let Some(a) = &lab.alert {
        line(out, 0, "alert");
        if let Some(command) = &a.command {
            line(out, 1, format!("command {}", command.join(" ")));
        }
        if let Some(hook) = &a.webhook {
            line(out, 1, format!("webhook {hook}"));
        }
        let lag = a
            .lag_bytes
            .map_or(String::new(), |b| format!(", lag over {b} bytes"));
        line(
            out,
            1,
            format!(
                "down after {}{lag}, at most every {}",
                a.down_after, a.min_interval
            ),
        );
    }
}
