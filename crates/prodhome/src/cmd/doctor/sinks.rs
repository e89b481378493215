//! The doctor's questions about `[sample] sinks`: is InfluxDB there, does
//! its database (or bucket) exist or will the sink create it, is the v2
//! token set; and, with a daemon running, is every sink writing.

use lab::{InfluxPlan, Plan};

use crate::context::runtime;

/// One finding: ok or not, and the line to print.
pub(super) type Finding = (bool, String);

/// What the doctor says about the lab's sinks.
pub(super) fn check(plan: &Plan, daemon: Option<&api::Client>) -> Vec<Finding> {
    let mut found = Vec::new();
    if let Some(influx) = &plan.sample.influx {
        found.extend(influx_findings(influx));
    }
    if plan.sample.prometheus {
        found.push((
            true,
            "prometheus sink: the daemon serves /metrics on its API port (`prodhome status` shows it)".into(),
        ));
    }
    if let Some(daemon) = daemon {
        found.extend(live(daemon));
    }
    found
}

fn influx_findings(influx: &InfluxPlan) -> Vec<Finding> {
    let opts = match daemon::offline::influx_options(influx) {
        Ok(opts) => store::InfluxOptions {
            batch: 1,
            buffer: 1,
            ..opts
        },
        Err(daemon::offline::MissingToken(var)) => {
            let line = format!(
                "influx sink: ${var} (the InfluxDB token, [sample.influx] token_env) is not set; export it before `prodhome up`"
            );
            return vec![(false, line)];
        }
    };
    let url = &opts.url;
    let checked = match runtime() {
        Ok(rt) => rt.block_on(store::check_influx(&opts)),
        Err(e) => return vec![(false, format!("influx sink: {e:#}"))],
    };
    let c = match checked {
        Ok(c) => c,
        Err(e) => return vec![(false, format!("influx sink: {e}"))],
    };
    let version = c.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    let reachable = (true, format!("InfluxDB{version} answers at {url}"));
    let target = if c.exists {
        (true, format!("influx sink: {} exists", c.target))
    } else if c.will_create {
        (
            true,
            format!(
                "influx sink: {} does not exist yet; the sink creates it",
                c.target
            ),
        )
    } else if matches!(influx, InfluxPlan::V1 { .. }) {
        (
            false,
            format!(
                "influx sink: {} does not exist and create_database = false: create it (`CREATE DATABASE ...` via {url}/query) or remove create_database",
                c.target
            ),
        )
    } else {
        (
            false,
            format!(
                "influx sink: {} does not exist: create it (`influx bucket create`)",
                c.target
            ),
        )
    };
    vec![reachable, target]
}

/// The running daemon's view: every sink failing now is a finding.
fn live(daemon: &api::Client) -> Vec<Finding> {
    let status = runtime().and_then(|rt| Ok(rt.block_on(daemon.status())?));
    let status = match status {
        Ok(s) => s,
        Err(e) => return vec![(false, format!("sinks: could not ask the running daemon: {e:#}"))],
    };
    status
        .sinks
        .iter()
        .map(|s| {
            if s.state == "ok" {
                (true, format!("sink {} writes ({} written)", s.name, s.written))
            } else {
                let error = s.last_error.as_deref().unwrap_or("no error recorded");
                (
                    false,
                    format!(
                        "sink {} is failing ({} failed, {} written): {error}",
                        s.name, s.failed, s.written
                    ),
                )
            }
        })
        .collect()
}
