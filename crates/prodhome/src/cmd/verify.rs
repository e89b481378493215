//! `prodhome verify [--ledger [FILE]]`: probe rows arrive and every
//! replicated table matches; with a ledger, every acknowledged write is on
//! the publisher, each subscriber has exactly the publisher's keys, and
//! every subscription's slot survived. Every replicated table's schema
//! (columns, types, NOT NULL, primary key, indexes) must match the
//! publisher's on each subscriber: drift fails the proof.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use pg::{Drift, KeyDiff, LedgerCheck, SlotCheck, VerifyReport};
use serde::Serialize;
use tokio_postgres::Client;

use crate::context::{Context, runtime};

/// Everything verify found.
#[derive(Debug, Serialize)]
pub(crate) struct Proof {
    pub(crate) lab: String,
    /// Every table converged, nothing acknowledged was lost, every slot is there.
    pub(crate) ok: bool,
    pub(crate) converged: bool,
    pub(crate) replications: Vec<VerifyReport>,
    /// Present when a ledger was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ledger: Option<Vec<LedgerCheck>>,
    pub(crate) acknowledged: u64,
    pub(crate) lost: u64,
    /// Key-level differences of tables that did not converge.
    pub(crate) differences: Vec<KeyDiff>,
    /// Tables whose schema differs on a subscriber, per table and node.
    pub(crate) drift: Vec<Drift>,
    pub(crate) slots: Vec<SlotCheck>,
}

pub(crate) fn run(ctx: &Context, timeout: Duration, ledger: Option<PathBuf>, json: bool) -> Result<i32> {
    let rt = runtime()?;
    let proof = rt.block_on(prove(ctx, timeout, ledger.as_deref()))?;
    rt.block_on(record_verdict(ctx, "verify", proof.ok, summary(&proof)));
    if json {
        println!("{}", serde_json::to_string_pretty(&proof)?);
    } else {
        print_proof(&proof);
    }
    Ok(if proof.ok { 0 } else { 1 })
}

/// Runs every check; used by `verify` and `soak`.
pub(crate) async fn prove(ctx: &Context, timeout: Duration, ledger: Option<&Path>) -> Result<Proof> {
    let nodes = ctx.node_specs()?;
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    for node in &nodes {
        let client = pg::user(node, pg::SUPERUSER, node.credentials.superuser.expose())
            .await
            .with_context(|| format!("is the lab up? (`prodhome status`) — connecting to {}", node.name))?;
        clients.insert(node.name.clone(), client);
    }
    let mut replications = Vec::new();
    let mut differences = Vec::new();
    let mut slots = Vec::new();
    for repl in &ctx.plan.replications {
        let publisher = (repl.publisher.as_str(), &clients[&repl.publisher]);
        let subs: Vec<(&str, &Client)> = repl
            .subscribers
            .iter()
            .map(|s| (s.as_str(), &clients[s]))
            .collect();
        let report = pg::verify(&repl.name, publisher, &subs, timeout)
            .await
            .map_err(|e| anyhow!("verifying replication {}: {e}", repl.name))?;
        for table in report
            .tables
            .iter()
            .filter(|t| t.subscribers.iter().any(|s| !s.matches))
        {
            for side in table.subscribers.iter().filter(|s| !s.matches) {
                let diff = pg::key_diff(publisher.1, (&side.node, &clients[&side.node]), &table.table).await;
                // A table without a one-column key is still reported by its checksum.
                if let Ok(diff) = diff {
                    differences.push(diff);
                }
            }
        }
        let names: Vec<String> = repl
            .subscribers
            .iter()
            .map(|s| pg::subscription_name(&repl.name, s))
            .collect();
        slots.extend(pg::check_slots(publisher.1, &names).await?);
        replications.push(report);
    }
    let ledger = match ledger {
        None => None,
        Some(path) => Some(check_ledger(ctx, &clients, path).await?),
    };
    let acknowledged = ledger.iter().flatten().map(|l| l.acknowledged).sum();
    let lost = ledger.iter().flatten().map(|l| l.lost).sum();
    let converged = replications.iter().all(|r| r.converged);
    let drift: Vec<Drift> = replications.iter().flat_map(|r| r.drift.clone()).collect();
    let ok = converged && lost == 0 && drift.is_empty() && slots.iter().all(|s| s.exists && s.active);
    Ok(Proof {
        lab: ctx.plan.name.clone(),
        ok,
        converged,
        replications,
        ledger,
        acknowledged,
        lost,
        differences,
        drift,
        slots,
    })
}

/// One line of what verify found, for the verdict event.
fn summary(proof: &Proof) -> String {
    let converged = proof.replications.iter().filter(|r| r.converged).count();
    let mut text = format!(
        "{converged} of {} replications converged",
        proof.replications.len()
    );
    if proof.ledger.is_some() {
        text.push_str(&format!(
            ", {} acknowledged writes, {} lost",
            proof.acknowledged, proof.lost
        ));
    }
    if !proof.drift.is_empty() {
        text.push_str(&format!(", {} tables drifted", proof.drift.len()));
    }
    let missing = proof.slots.iter().filter(|s| !(s.exists && s.active)).count();
    if missing > 0 {
        text.push_str(&format!(", {missing} slots missing or inactive"));
    }
    text
}

/// Records a verify/soak verdict in the lab's event log (through the
/// daemon, which owns it), for `prodhome report`. A lab whose daemon is
/// not running, or that refuses, gets a line on stderr: the verdict itself
/// stands.
pub(crate) async fn record_verdict(ctx: &Context, command: &str, ok: bool, summary: String) {
    let Some(info) = ctx.state.running_daemon() else {
        eprintln!("prodhome: the daemon is not running, so this verdict is not in the event log");
        return;
    };
    let event = model::Event::now(
        ctx.plan.name.clone(),
        model::EventKind::Verdict {
            command: command.into(),
            ok,
            summary,
        },
    );
    let sent = match ctx.control(&info) {
        Ok(client) => client.event(&event).await.map_err(|e| format!("{e:#}")),
        Err(e) => Err(format!("{e:#}")),
    };
    if let Err(why) = sent {
        eprintln!("prodhome: the verdict is not in the event log: {why}");
    }
}

async fn check_ledger(
    ctx: &Context,
    clients: &BTreeMap<String, Client>,
    path: &Path,
) -> Result<Vec<LedgerCheck>> {
    let entries =
        hum::ledger::read(path).with_context(|| format!("reading the ledger {}", path.display()))?;
    let writer = ctx
        .plan
        .hum
        .as_ref()
        .map(|h| h.node.as_str())
        .unwrap_or("publisher");
    let client = clients
        .get(writer)
        .or_else(|| {
            ctx.plan
                .replications
                .first()
                .and_then(|r| clients.get(&r.publisher))
        })
        .ok_or_else(|| anyhow!("no node {writer} to check the ledger against"))?;
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in entries {
        by_table.entry(entry.table).or_default().push(entry.key);
    }
    let mut checks = Vec::new();
    for (table, keys) in by_table {
        checks.push(
            pg::check_ledger(client, &table, &keys)
                .await
                .map_err(|e| anyhow!("{e}"))?,
        );
    }
    Ok(checks)
}

pub(crate) fn print_proof(proof: &Proof) {
    for report in &proof.replications {
        print_report(report);
    }
    if proof.replications.is_empty() {
        println!("lab {} has no replication to verify", proof.lab);
    }
    for diff in &proof.differences {
        println!(
            "  {} on {}: {} missing {:?}, {} unexpected {:?}",
            diff.table, diff.node, diff.missing, diff.missing_keys, diff.unexpected, diff.unexpected_keys
        );
    }
    for drift in &proof.drift {
        println!("  schema drift: {} on {}:", drift.table, drift.node);
        for difference in &drift.differences {
            println!("    {difference}");
        }
    }
    if !proof.drift.is_empty() {
        println!(
            "  make the subscribers' schema match the publisher's (`prodhome psql NODE`), or rebuild them"
        );
    }
    for slot in proof.slots.iter().filter(|s| !(s.exists && s.active)) {
        if slot.exists {
            println!(
                "  slot {} is not in use: its subscriber is not connected",
                slot.slot
            );
        } else {
            println!(
                "  slot {} is GONE: that subscriber can never catch up; rebuild it",
                slot.slot
            );
        }
    }
    if let Some(ledger) = &proof.ledger {
        for check in ledger {
            println!(
                "ledger {}: {} acknowledged writes, {} lost{}",
                check.table,
                check.acknowledged,
                check.lost,
                if check.lost > 0 {
                    format!(" {:?}", check.lost_keys)
                } else {
                    String::new()
                }
            );
        }
    }
    println!(
        "{}",
        if proof.ok {
            "verdict: ok"
        } else {
            "verdict: FAILED"
        }
    );
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
