//! `prodhome verify`: probe rows arrive and every replicated table matches.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use pg::VerifyReport;

use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, timeout: Duration, json: bool) -> Result<i32> {
    let reports = runtime()?.block_on(verify_all(ctx, timeout))?;
    let converged = reports.iter().all(|r| r.converged);
    if json {
        let out =
            serde_json::json!({ "lab": ctx.plan.name, "converged": converged, "replications": reports });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for report in &reports {
            print_report(report);
        }
        if reports.is_empty() {
            println!("lab {} has no replication to verify", ctx.plan.name);
        }
    }
    Ok(if converged { 0 } else { 1 })
}

async fn verify_all(ctx: &Context, timeout: Duration) -> Result<Vec<VerifyReport>> {
    let ports = daemon::ports::load(&ctx.state);
    let secrets = daemon::secrets::load(&ctx.state)?;
    let nodes = daemon::assemble::node_specs(&ctx.plan, &ctx.state, &ports, &secrets)?;
    let mut clients = std::collections::BTreeMap::new();
    for node in &nodes {
        let client = pg::user(node, pg::SUPERUSER, node.credentials.superuser.expose())
            .await
            .with_context(|| format!("is the lab up? (`prodhome status`) — connecting to {}", node.name))?;
        clients.insert(node.name.clone(), client);
    }
    let mut reports = Vec::new();
    for repl in &ctx.plan.replications {
        let publisher = (repl.publisher.as_str(), &clients[&repl.publisher]);
        let subs: Vec<(&str, &tokio_postgres::Client)> = repl
            .subscribers
            .iter()
            .map(|s| (s.as_str(), &clients[s]))
            .collect();
        let report = pg::verify(&repl.name, publisher, &subs, timeout)
            .await
            .map_err(|e| anyhow!("verifying replication {}: {e}", repl.name))?;
        reports.push(report);
    }
    Ok(reports)
}

fn print_report(report: &VerifyReport) {
    let verdict = if report.converged {
        "converged"
    } else {
        "NOT converged"
    };
    println!("replication {}: {verdict}", report.replication);
    for (sub, ms) in &report.probe_ms {
        match ms {
            Some(ms) => println!("  probe row reached {sub} in {ms} ms"),
            None => println!("  probe row never reached {sub}: replication to it is stuck or cut"),
        }
    }
    println!(
        "  {:<28} {:<16} {:>10}  {:<22} RESULT",
        "TABLE", "NODE", "ROWS", "CHECKSUM"
    );
    for table in &report.tables {
        let p = &table.publisher;
        println!(
            "  {:<28} {:<16} {:>10}  {:<22} publisher",
            table.table, p.node, p.rows, p.checksum
        );
        for s in &table.subscribers {
            let result = if s.matches {
                "ok".to_string()
            } else {
                format!("DIFFERS ({:+} rows)", s.rows - p.rows)
            };
            println!(
                "  {:<28} {:<16} {:>10}  {:<22} {result}",
                "", s.node, s.rows, s.checksum
            );
        }
    }
}
