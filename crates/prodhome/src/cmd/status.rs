//! `prodhome status`: the daemon's view, or the disk's when it is not running.

use anyhow::Result;
use api::{LinkReport, NodeStatus, Status};

use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, json: bool) -> Result<i32> {
    let status = match ctx.state.running_daemon() {
        Some(info) => runtime()?.block_on(ctx.client(&info).status())?,
        None => offline(ctx),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_table(&status);
    }
    Ok(0)
}

/// The status of a lab with no daemon: nodes are stopped, or running on
/// their own when a daemon was killed.
fn offline(ctx: &Context) -> Status {
    let lab = ctx.offline();
    let nodes = ctx
        .plan
        .nodes
        .iter()
        .map(|n| {
            let pid = pg::postmaster_pid(&ctx.state.data_dir(&n.name));
            NodeStatus {
                name: n.name.clone(),
                kind: "postgres".into(),
                state: if pid.is_some() { "unsupervised" } else { "stopped" }.into(),
                pid,
                port: lab.port(&n.name).unwrap_or(0),
                proxy_port: None,
                restarts: 0,
                last_exit: None,
                since_ns: 0,
                container: None,
            }
        })
        .collect();
    let replication = ctx
        .plan
        .replications
        .iter()
        .flat_map(|r| {
            r.subscribers.iter().map(|s| LinkReport {
                name: r.name.clone(),
                publisher: r.publisher.clone(),
                subscriber: s.clone(),
                state: "unknown".into(),
                lag_bytes: None,
                error: None,
                fault: None,
            })
        })
        .collect();
    Status {
        lab: ctx.plan.name.clone(),
        api: String::new(),
        phase: "stopped".into(),
        message: Some("no daemon is running for this lab; `prodhome up` starts it".into()),
        nodes,
        services: Vec::new(),
        replication,
        sinks: Vec::new(),
    }
}

pub(crate) fn print_table(status: &Status) {
    let api = if status.api.is_empty() { "-" } else { &status.api };
    println!("lab {}  {}  api {api}", status.lab, status.phase);
    if let Some(message) = &status.message {
        println!("  {message}");
    }
    println!();
    // PORT is the node's own; PROXY the one in front of it, where
    // client-path faults act. Services have neither, and line up all the same.
    let row = |name: &str,
               kind: &str,
               state: &str,
               pid: Option<u32>,
               ports: (String, String),
               restarts: u32,
               exit: Option<&str>| {
        let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let exit = exit.unwrap_or("-");
        println!(
            "{name:<16} {kind:<9} {state:<13} {pid:>8} {:>6} {:>6} {restarts:>8}  {exit}",
            ports.0, ports.1
        );
    };
    println!(
        "{:<16} {:<9} {:<13} {:>8} {:>6} {:>6} {:>8}  LAST EXIT",
        "NODE", "KIND", "STATE", "PID", "PORT", "PROXY", "RESTARTS"
    );
    for n in &status.nodes {
        let proxy = n.proxy_port.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let ports = (n.port.to_string(), proxy);
        row(
            &n.name,
            &n.kind,
            &n.state,
            n.pid,
            ports,
            n.restarts,
            n.last_exit.as_deref(),
        );
        if let Some(container) = &n.container {
            println!("{:<16} container {container}", "");
        }
    }
    for s in &status.services {
        let ports = ("-".to_string(), "-".to_string());
        row(
            &s.name,
            &s.kind,
            &s.state,
            s.pid,
            ports,
            s.restarts,
            s.last_exit.as_deref(),
        );
        if let Some(container) = &s.container {
            println!("{:<16} container {container}", "");
        }
        if let Some(probe) = &s.last_probe_error {
            println!("{:<16} {probe}", "");
        }
    }
    print_replication(&status.replication);
    print_sinks(&status.sinks);
}

/// The replication links, one line each, with the subscriber's error under it.
fn print_replication(replication: &[api::LinkReport]) {
    if replication.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<16} {:<16} {:<16} {:<13} {:>12}  FAULT",
        "REPLICATION", "PUBLISHER", "SUBSCRIBER", "STATE", "LAG"
    );
    for r in replication {
        let lag = r
            .lag_bytes
            .map(|b| format!("{b} B"))
            .unwrap_or_else(|| "-".into());
        let fault = r.fault.as_deref().unwrap_or("-");
        println!(
            "{:<16} {:<16} {:<16} {:<13} {lag:>12}  {fault}",
            r.name, r.publisher, r.subscriber, r.state
        );
        if let Some(error) = &r.error {
            println!("{:<16} {error}", "");
        }
    }
}

/// One line per sink; a failing one says what its last write got.
fn print_sinks(sinks: &[api::SinkStatus]) {
    if sinks.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<16} {:<9} {:>10} {:>8} {:>8} {:>8}",
        "SINK", "STATE", "WRITTEN", "FAILED", "DROPPED", "QUEUED"
    );
    for s in sinks {
        println!(
            "{:<16} {:<9} {:>10} {:>8} {:>8} {:>8}",
            s.name, s.state, s.written, s.failed, s.dropped, s.queued
        );
        if let Some(error) = s.last_error.as_deref().filter(|_| s.state != "ok") {
            println!("{:<16} last error: {error}", "");
        }
    }
}
