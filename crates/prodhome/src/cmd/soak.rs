//! `prodhome soak`: load with a ledger, random faults from a set, then heal
//! everything, verify, and give a verdict: nothing acknowledged may be lost
//! and every subscriber must converge.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ::chaos::{Fault, FaultKind, Planned, Scenario, Target};
use anyhow::{Context as _, Result, anyhow};
use serde::Serialize;

use crate::cmd::verify::{self, Proof};
use crate::context::{Context, runtime};

pub(crate) struct SoakOptions {
    pub(crate) duration: Duration,
    pub(crate) seed: u64,
    pub(crate) faults: Vec<FaultKind>,
    pub(crate) rate: hum::Rate,
    pub(crate) clients: u32,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
}

/// How long each fault lasts, and how far apart a kind's faults are.
const FAULT_FOR: Duration = Duration::from_secs(3);
const EVERY: (Duration, Duration) = (Duration::from_secs(8), Duration::from_secs(20));

#[derive(Serialize)]
struct Verdict {
    ok: bool,
    seed: u64,
    duration_s: f64,
    /// Faults applied, by kind.
    faults: BTreeMap<String, u64>,
    /// Faults the daemon could not apply when their time came (their node
    /// was down, say).
    skipped_faults: u64,
    transactions: u64,
    errors: u64,
    /// Acknowledged writes in the ledger.
    acknowledged: u64,
    /// Acknowledged writes the publisher does not have. Must be 0.
    lost: u64,
    converged: bool,
    /// From "everything healed" to "every subscriber converged".
    max_converge_ms: u64,
    restarts: u64,
    schedule: Vec<String>,
    /// Why the verdict is not ok, one line each; empty when it is.
    reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<Proof>,
}

pub(crate) fn run(ctx: &Context, opts: SoakOptions) -> Result<i32> {
    let writer = writer(ctx);
    let schedule = plan_faults(ctx, &writer, &opts);
    let described: Vec<String> = schedule
        .iter()
        .map(|p| format!("{:>8.1}s {}", p.at.as_secs_f64(), p.fault))
        .collect();
    if opts.dry_run {
        if opts.json {
            println!(
                "{}",
                serde_json::json!({ "seed": opts.seed, "schedule": described })
            );
        } else {
            described.iter().for_each(|line| println!("{line}"));
        }
        return Ok(0);
    }
    let info = ctx.state.running_daemon().ok_or_else(|| {
        anyhow!(
            "lab {} is not running; start it with `prodhome up -d` first",
            ctx.plan.name
        )
    })?;
    let client = ctx.control(&info)?;
    let rt = runtime()?;
    let verdict = rt.block_on(soak(ctx, &client, &writer, &opts, &schedule, described))?;
    let summary = format!(
        "seed {}, {:.0} s, {} transactions, {} acknowledged, {} lost{}",
        verdict.seed,
        verdict.duration_s,
        verdict.transactions,
        verdict.acknowledged,
        verdict.lost,
        if verdict.reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", verdict.reasons.join("; "))
        }
    );
    rt.block_on(verify::record_verdict(ctx, "soak", verdict.ok, summary));
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        print_verdict(&verdict);
    }
    Ok(if verdict.ok { 0 } else { 1 })
}

/// The node the load writes to.
fn writer(ctx: &Context) -> String {
    ctx.plan
        .hum
        .as_ref()
        .map(|h| h.node.clone())
        .or_else(|| ctx.plan.replications.first().map(|r| r.publisher.clone()))
        .unwrap_or_else(|| ctx.plan.nodes[0].name.clone())
}

/// Every kind of fault on every target it can hit, from one seed.
fn plan_faults(ctx: &Context, writer: &str, opts: &SoakOptions) -> Vec<Planned> {
    let nodes: Vec<Target> = ctx
        .plan
        .nodes
        .iter()
        .map(|n| Target::Node { node: n.name.clone() })
        .collect();
    let mut links: Vec<Target> = ctx
        .plan
        .replications
        .iter()
        .flat_map(|r| {
            r.subscribers.iter().map(|s| Target::Link {
                publisher: r.publisher.clone(),
                subscriber: s.clone(),
            })
        })
        .collect();
    links.push(Target::Clients {
        node: writer.to_string(),
    });
    let scenarios: Vec<Scenario> = opts
        .faults
        .iter()
        .map(|&kind| {
            let targets = if kind.on_node() {
                nodes.clone()
            } else {
                links.clone()
            };
            Scenario {
                kind,
                template: Fault::new(kind, targets[0].clone()),
                targets,
                duration: FAULT_FOR,
                every: EVERY,
            }
        })
        .collect();
    // The last fifth stays calm, so the run ends with load on a healed lab.
    ::chaos::schedule(&scenarios, opts.seed, opts.duration.mul_f64(0.8))
}

/// What a run gathered on its way to the verdict. Anything that went wrong
/// once the soak started is a reason here, never an early return: the
/// soak always ends with a verdict.
#[derive(Default)]
struct Outcome {
    applied: BTreeMap<String, u64>,
    skipped: u64,
    load: Option<hum::Summary>,
    proof: Option<Proof>,
    max_converge_ms: u64,
    restarts: u64,
    reasons: Vec<String>,
}

/// Fails only before the soak starts (the daemon does not answer, the
/// lab has no such node); afterwards every failure is in the verdict.
async fn soak(
    ctx: &Context,
    client: &api::Client,
    writer: &str,
    opts: &SoakOptions,
    schedule: &[Planned],
    described: Vec<String>,
) -> Result<Verdict> {
    let status = client.status().await?;
    let restarts_before: u64 = status.nodes.iter().map(|n| n.restarts as u64).sum();
    let target = writer_target(ctx, &status, writer)?;
    let ledger = ctx
        .state
        .root()
        .join(format!("soak-{}-{}.ledger", opts.seed, model::now_ns()));
    let start = tokio::time::Instant::now();
    let mut run = Outcome::default();
    // books reaches every subscriber whose publication carries it before
    // the first row is written (see cmd/hum.rs init_shared).
    match super::hum::init_shared(ctx, &target, &hum::Workload::Books, false).await {
        Ok(()) => load_with_faults(client, target, &ledger, opts, schedule, &mut run).await,
        Err(e) => run
            .reasons
            .push(format!("preparing the books table on {writer} failed: {e:#}")),
    }
    let ledger = run.load.is_some().then_some(ledger.as_path());
    heal_and_prove(ctx, client, ledger, opts, &mut run).await;
    match client.status().await {
        Ok(status) => {
            let after: u64 = status.nodes.iter().map(|n| n.restarts as u64).sum();
            run.restarts = after.saturating_sub(restarts_before);
        }
        Err(e) => run
            .reasons
            .push(format!("the daemon did not answer after the proof: {e}")),
    }
    Ok(verdict(opts.seed, start.elapsed(), described, run))
}

/// hum's connection to the writer, through its client-path proxy so that
/// client faults reach the load.
fn writer_target(ctx: &Context, status: &api::Status, writer: &str) -> Result<hum::Target> {
    let nodes = ctx.node_specs()?;
    let node = nodes
        .iter()
        .find(|n| n.name == writer)
        .ok_or_else(|| anyhow!("the load's node {writer} is not in lab {}", ctx.plan.name))?;
    let proxy_port = status
        .nodes
        .iter()
        .find(|n| n.name == writer)
        .and_then(|n| n.proxy_port)
        .unwrap_or(node.port);
    Ok(daemon::offline::hum_target(node, proxy_port))
}

/// The load for `--duration` with the faults at their times.
async fn load_with_faults(
    client: &api::Client,
    target: hum::Target,
    ledger: &std::path::Path,
    opts: &SoakOptions,
    schedule: &[Planned],
    run: &mut Outcome,
) {
    let mut hum_opts = hum::HumOptions::new(target, hum::Workload::Books);
    hum_opts.clients = opts.clients;
    hum_opts.rate = opts.rate;
    hum_opts.seed = opts.seed;
    hum_opts.ledger = Some(ledger.to_path_buf());
    hum_opts.duration = Some(opts.duration);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(hum::run(hum_opts, None, stop));
    let start = tokio::time::Instant::now();
    for planned in schedule {
        tokio::time::sleep_until(start + planned.at).await;
        match client.chaos(&planned.fault).await {
            Ok(_) => {
                *run.applied
                    .entry(planned.fault.kind.name().to_string())
                    .or_default() += 1
            }
            // The daemon answered no (e.g. the node is down just now).
            Err(e) if e.status().is_some() && !e.is_unauthorized() => {
                eprintln!("prodhome: skipped {}: {e}", planned.fault);
                run.skipped += 1;
            }
            Err(e) => {
                run.reasons.push(format!(
                    "the daemon stopped answering when {} was due: {e}",
                    planned.fault
                ));
                // No more faults can be applied: end the load now.
                let _ = stop_tx.send(true);
                break;
            }
        }
    }
    match load.await {
        Ok(Ok(summary)) => {
            if let Some(e) = &summary.ledger_error {
                run.reasons
                    .push(format!("the load could not write its ledger: {e}"));
            }
            if summary.transactions == 0 {
                run.reasons.push(format!(
                    "the load committed no transaction ({} errors)",
                    summary.errors
                ));
            }
            run.load = Some(summary);
        }
        Ok(Err(e)) => run.reasons.push(format!("the load failed to start: {e}")),
        Err(e) => run.reasons.push(format!("the load stopped unexpectedly: {e}")),
    }
}

/// The proof waits at most this long for subscribers to converge: long
/// enough to catch up after the faults of a run this long, never more than
/// 2 minutes, so a subscriber that will never converge does not double the
/// run's time.
fn proof_timeout(duration: Duration) -> Duration {
    duration.clamp(Duration::from_secs(30), Duration::from_secs(120))
}

/// Undoes every fault, waits for every node, then proves.
async fn heal_and_prove(
    ctx: &Context,
    client: &api::Client,
    ledger: Option<&std::path::Path>,
    opts: &SoakOptions,
    run: &mut Outcome,
) {
    if let Err(e) = client.heal().await {
        run.reasons.push(format!("healing the faults failed: {e}"));
    }
    let healed = Instant::now();
    if let Err(e) = wait_all_ready(client).await {
        run.reasons.push(format!("{e:#}"));
        return;
    }
    match verify::prove(ctx, proof_timeout(opts.duration), ledger).await {
        Ok(proof) => run.proof = Some(proof),
        Err(e) => run.reasons.push(format!("the proof could not finish: {e:#}")),
    }
    run.max_converge_ms = healed.elapsed().as_millis() as u64;
}

/// The verdict: ok only when nothing went wrong and the proof holds;
/// every way it does not is a reason.
fn verdict(seed: u64, duration: Duration, schedule: Vec<String>, run: Outcome) -> Verdict {
    let mut reasons = run.reasons;
    if let Some(proof) = &run.proof {
        reasons.extend(proof_reasons(proof));
    }
    let proved = run.proof.as_ref().is_some_and(|p| p.ok);
    if reasons.is_empty() && !proved {
        reasons.push("the proof failed; its report follows".into());
    }
    let load = run.load.as_ref();
    Verdict {
        ok: reasons.is_empty() && proved,
        seed,
        duration_s: duration.as_secs_f64(),
        faults: run.applied,
        skipped_faults: run.skipped,
        transactions: load.map_or(0, |l| l.transactions),
        errors: load.map_or(0, |l| l.errors),
        acknowledged: run.proof.as_ref().map_or(0, |p| p.acknowledged),
        lost: run.proof.as_ref().map_or(0, |p| p.lost),
        converged: run.proof.as_ref().is_some_and(|p| p.converged),
        max_converge_ms: run.max_converge_ms,
        restarts: run.restarts,
        schedule,
        reasons,
        proof: run.proof,
    }
}

/// Why a proof does not hold, one line per finding.
fn proof_reasons(proof: &Proof) -> Vec<String> {
    let mut reasons = Vec::new();
    for report in &proof.replications {
        let r = &report.replication;
        for (node, ms) in &report.probe_ms {
            if ms.is_none() {
                reasons.push(format!("replication {r}: the probe row never reached {node}"));
            }
        }
        for table in &report.tables {
            for side in table.subscribers.iter().filter(|s| !s.matches) {
                reasons.push(format!(
                    "replication {r}: {} on {} has {} rows, the publisher {} ({})",
                    table.table,
                    side.node,
                    side.rows,
                    table.publisher.rows,
                    if side.rows == table.publisher.rows {
                        "same count, different rows"
                    } else {
                        "not converged"
                    }
                ));
            }
        }
    }
    for check in proof.ledger.iter().flatten().filter(|c| c.lost > 0) {
        reasons.push(format!(
            "{} acknowledged writes to {} are not on the publisher",
            check.lost, check.table
        ));
    }
    for slot in &proof.slots {
        if !slot.exists {
            reasons.push(format!("replication slot {} is gone", slot.slot));
        } else if !slot.active {
            reasons.push(format!("replication slot {} is not active", slot.slot));
        }
    }
    reasons
}

async fn wait_all_ready(client: &api::Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = client
            .status()
            .await
            .context("after healing, the daemon did not answer")?;
        if status.nodes.iter().all(|n| n.state == "ready") {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let states: Vec<String> = status
                .nodes
                .iter()
                .filter(|n| n.state != "ready")
                .map(|n| format!("{} {}", n.name, n.state))
                .collect();
            return Err(anyhow!(
                "after healing, not every node came back within 120 s: {} (see `prodhome logs NODE`)",
                states.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_verdict(v: &Verdict) {
    println!("soak, seed {}, {:.0} s", v.seed, v.duration_s);
    println!("  {:<28} {}", "faults injected", fmt_faults(&v.faults));
    println!("  {:<28} {}", "faults skipped", v.skipped_faults);
    println!(
        "  {:<28} {} ({} errors, retried)",
        "transactions", v.transactions, v.errors
    );
    println!("  {:<28} {}", "acknowledged writes", v.acknowledged);
    println!("  {:<28} {}", "acknowledged writes LOST", v.lost);
    println!("  {:<28} {}", "subscribers converged", v.converged);
    println!("  {:<28} {} ms", "time to converge after heal", v.max_converge_ms);
    println!("  {:<28} {}", "node restarts", v.restarts);
    if let Some(proof) = &v.proof
        && !proof.ok
    {
        verify::print_proof(proof);
    }
    for reason in &v.reasons {
        println!("  reason: {reason}");
    }
    println!("{}", if v.ok { "verdict: ok" } else { "verdict: FAILED" });
}

fn fmt_faults(faults: &BTreeMap<String, u64>) -> String {
    if faults.is_empty() {
        return "none".into();
    }
    faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use pg::{SlotCheck, TableCheck, TableSide, VerifyReport};

    use super::*;

    fn side(node: &str, rows: i64, matches: bool) -> TableSide {
        TableSide {
            node: node.into(),
            rows,
            checksum: rows.to_string(),
            matches,
        }
    }

    fn proof(replica_rows: i64) -> Proof {
        let converged = replica_rows == 10;
        Proof {
            lab: "shop".into(),
            ok: converged,
            converged,
            replications: vec![VerifyReport {
                replication: "everything".into(),
                converged,
                probe_ms: vec![("replica_a".into(), Some(5)), ("replica_b".into(), None)],
                tables: vec![TableCheck {
                    table: "public.books".into(),
                    publisher: side("main", 10, true),
                    subscribers: vec![side("replica_a", replica_rows, converged)],
                }],
                drift: Vec::new(),
            }],
            ledger: None,
            acknowledged: 7,
            lost: 0,
            differences: Vec::new(),
            drift: Vec::new(),
            slots: vec![SlotCheck {
                slot: "everything_replica_a".into(),
                exists: true,
                active: true,
            }],
        }
    }

    fn verdict_from(run: Outcome) -> Verdict {
        verdict(1, Duration::from_secs(20), Vec::new(), run)
    }

    #[test]
    fn a_diverged_subscriber_is_a_failed_verdict_with_its_reasons() {
        let v = verdict_from(Outcome {
            proof: Some(proof(12)),
            ..Outcome::default()
        });
        assert!(!v.ok && !v.converged);
        assert_eq!(v.acknowledged, 7);
        assert_eq!(
            v.reasons,
            [
                "replication everything: the probe row never reached replica_b",
                "replication everything: public.books on replica_a has 12 rows, the publisher 10 (not converged)",
            ]
        );
    }

    #[test]
    fn a_failed_step_is_a_reason_and_no_proof_is_no_convergence() {
        let v = verdict_from(Outcome {
            reasons: vec!["after healing, not every node came back within 120 s: main stopped".into()],
            ..Outcome::default()
        });
        assert!(!v.ok && !v.converged);
        assert_eq!(v.reasons.len(), 1);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["reasons"][0], v.reasons[0]);
        assert!(json.get("proof").is_none());
    }

    #[test]
    fn a_held_proof_with_nothing_wrong_is_ok_and_has_no_reasons() {
        let mut held = proof(10);
        held.replications[0].probe_ms[1].1 = Some(9);
        let v = verdict_from(Outcome {
            proof: Some(held),
            ..Outcome::default()
        });
        assert!(v.ok && v.converged, "{:?}", v.reasons);
        assert!(v.reasons.is_empty());
        // A proof that fails for a reason not itemised still names one.
        let mut failed = proof(10);
        failed.replications[0].probe_ms[1].1 = Some(9);
        failed.ok = false;
        let v = verdict_from(Outcome {
            proof: Some(failed),
            ..Outcome::default()
        });
        assert!(!v.ok && !v.reasons.is_empty());
    }
}
