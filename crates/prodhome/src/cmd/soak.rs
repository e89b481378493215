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
    pub(crate) rate: f64,
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
    let ports = daemon::ports::load(&ctx.state);
    let secrets = daemon::secrets::load(&ctx.state)?;
    let nodes = daemon::assemble::node_specs(&ctx.plan, &ctx.state, &ports, &secrets)?;
    let node = nodes
        .iter()
        .find(|n| n.name == writer)
        .context("the writer node")?;
    let proxy_port = status
        .nodes
        .iter()
        .find(|n| n.name == writer)
        .and_then(|n| n.proxy_port)
        .unwrap_or(node.port);
    let target = daemon::assemble::hum_target(node, proxy_port);
    let ledger = ctx
        .state
        .root()
        .join(format!("soak-{}-{}.ledger", opts.seed, model::now_ns()));
    hum::init(&target, &hum::Workload::Books)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut hum_opts = hum::HumOptions::new(target, hum::Workload::Books);
    hum_opts.clients = opts.clients;
    hum_opts.rate = hum::Rate::PerSecond(opts.rate);
    hum_opts.seed = opts.seed;
    hum_opts.ledger = Some(ledger.clone());
    hum_opts.duration = Some(opts.duration);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(hum::run(hum_opts, None, stop));

    let start = tokio::time::Instant::now();
    let mut applied: BTreeMap<String, u64> = BTreeMap::new();
    let mut skipped = 0;
    for planned in schedule {
        tokio::time::sleep_until(start + planned.at).await;
        match client.chaos(&planned.fault).await? {
            Ok(_) => *applied.entry(planned.fault.kind.name().to_string()).or_default() += 1,
            Err(reason) => {
                eprintln!("prodhome: skipped {}: {reason}", planned.fault);
                skipped += 1;
            }
        }
    }
    let summary = load.await.context("the load task")?.map_err(|e| anyhow!("{e}"))?;
    let _ = stop_tx.send(true);
    client.heal().await?;
    let healed = Instant::now();
    wait_all_ready(client).await?;
    let proof = verify::prove(ctx, Duration::from_secs(120), Some(&ledger)).await?;
    let max_converge_ms = healed.elapsed().as_millis() as u64;
    let status = client.status().await?;
    let restarts_after: u64 = status.nodes.iter().map(|n| n.restarts as u64).sum();
    Ok(Verdict {
        ok: proof.ok,
        seed: opts.seed,
        duration_s: start.elapsed().as_secs_f64(),
        faults: applied,
        skipped_faults: skipped,
        transactions: summary.transactions,
        errors: summary.errors,
        acknowledged: proof.acknowledged,
        lost: proof.lost,
        converged: proof.converged,
        max_converge_ms,
        restarts: restarts_after.saturating_sub(restarts_before),
        schedule: described,
        proof: Some(proof),
    })
}

async fn wait_all_ready(client: &api::Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = client.status().await?;
        if status.nodes.iter().all(|n| n.state == "ready") {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let states: Vec<String> = status
                .nodes
                .iter()
                .map(|n| format!("{} {}", n.name, n.state))
                .collect();
            return Err(anyhow!(
                "after healing, not every node came back within 120 s: {}",
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
