//! `prodhome chaos`: apply one fault now through the daemon, list the
//! faults in force, or heal them all.

use std::time::Duration;

use ::chaos::{Fault, FaultKind, Target};
use anyhow::{Context as _, Result, anyhow, bail};

use crate::context::{Context, runtime};

pub(crate) struct Params {
    pub(crate) duration: Option<Duration>,
    pub(crate) delay: Duration,
    pub(crate) jitter: Duration,
    pub(crate) bytes_per_sec: u64,
    /// `--network`: a partition of the node itself.
    pub(crate) network: bool,
}

pub(crate) fn run(
    ctx: &Context,
    fault: &str,
    target: Option<&str>,
    params: Params,
    json: bool,
) -> Result<i32> {
    let info = ctx.state.running_daemon().ok_or_else(|| {
        anyhow!(
            "lab {} is not running; faults need the daemon (`prodhome up -d`)",
            ctx.plan.name
        )
    })?;
    let client = if fault == "list" {
        ctx.client(&info)
    } else {
        ctx.control(&info)?
    };
    let rt = runtime()?;
    match fault {
        "list" => {
            let faults = rt.block_on(client.faults())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&faults)?);
            } else if faults.is_empty() {
                println!("no faults in force");
            } else {
                for f in faults {
                    let ends = f
                        .ends_ns
                        .map(|e| format!("ends in {:.1} s", (e - model::now_ns()) as f64 / 1e9))
                        .unwrap_or_else(|| "until healed".into());
                    println!("#{:<4} {}  ({ends})", f.id, f.fault);
                }
            }
            Ok(0)
        }
        "heal" => {
            rt.block_on(client.heal())?;
            eprintln!("prodhome: every fault undone");
            Ok(0)
        }
        name => {
            let kind = FaultKind::parse(name).ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                anyhow!(
                    "unknown fault `{name}`; faults are {}, or `list` and `heal`",
                    names.join(", ")
                )
            })?;
            let target = target
                .with_context(|| format!("`chaos {name}` needs a target, e.g. `chaos {name} subscriber1`"))?;
            let target = ::chaos::parse_target(kind, target).map_err(|e| anyhow!("{e}"))?;
            let target = whole_node(ctx, kind, target, params.network)?;
            if kind.instant() && params.duration.is_some() {
                bail!("{kind} is over once applied; it takes no --for");
            }
            let mut fault = Fault::new(kind, target);
            fault.duration = params.duration;
            fault.delay = params.delay;
            fault.jitter = params.jitter;
            fault.bytes_per_sec = params.bytes_per_sec;
            // A refusal's text is the daemon's reason, as before.
            let active = rt.block_on(client.chaos(&fault))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&active)?);
            } else {
                eprintln!("prodhome: applied #{}: {}", active.id, active.fault);
            }
            Ok(0)
        }
    }
}

/// `partition NODE --network`: the node itself, not its client path (which
/// is what a link fault given a bare node means).
fn whole_node(ctx: &Context, kind: FaultKind, target: Target, network: bool) -> Result<Target> {
    if !network {
        return Ok(target);
    }
    if ctx.plan.backend != lab::Backend::Docker {
        bail!(
            "--network cuts a container off the lab network, and lab {}'s nodes are not containers (backend = \"docker\" runs them so); \
             partition their links instead (clients:NODE or PUBLISHER:SUBSCRIBER)",
            ctx.plan.name
        );
    }
    match (kind, target) {
        (FaultKind::Partition, Target::Clients { node }) => Ok(Target::Node { node }),
        (FaultKind::Partition, other) => {
            bail!("--network cuts a node off its network: give the node alone, not {other}")
        }
        (kind, _) => bail!("--network is for `chaos partition NODE`, not {kind}"),
    }
}
