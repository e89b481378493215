//! `prodhome doctor`: can this machine run the lab? One line per check,
//! ok or fail, with the fix; `--json` prints the same checks as one object.

use anyhow::Result;

use crate::cli::Global;
use crate::context::{Context, cache_dir};

mod engine;
mod sinks;

/// One check as `--json` prints it: "ok", "fail" or "info", and what.
#[derive(serde::Serialize)]
struct Check {
    status: &'static str,
    what: String,
}

pub(crate) fn run(global: &Global, json: bool) -> Result<i32> {
    let mut out = Out {
        json,
        failed: 0,
        checks: Vec::new(),
    };
    let ctx = match Context::load(global) {
        Ok(ctx) => {
            let source = ctx
                .plan
                .file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "built-in seed lab".into());
            out.line(true, format!("lab file: {} ({source})", ctx.plan.name));
            ctx
        }
        Err(e) => {
            out.line(false, format!("lab file: {e:#}"));
            print_json(json, &out.checks, 1)?;
            return Ok(1);
        }
    };
    match pg::find_binaries(ctx.plan.postgres_version) {
        Ok(b) => out.line(
            true,
            format!("PostgreSQL {} binaries in {}", b.version, b.bindir.display()),
        ),
        Err(e) => out.line(false, format!("binaries: {e}")),
    }
    account_and_state(&ctx, &mut out);
    ports(&ctx, &mut out);
    let daemon = ctx.state.running_daemon().map(|d| ctx.client(&d));
    for (ok, what) in sinks::check(&ctx.plan, daemon.as_ref()) {
        out.line(ok, what);
    }
    let ((ok, what), notes) = engine::check(&ctx.plan);
    out.line(ok, what);
    for note in notes {
        out.report("info", note);
    }
    let cache = match cache_dir() {
        Some(dir) => dir.display().to_string(),
        None => "off".into(),
    };
    out.report("info", format!("template cache: {cache}"));
    let code = if out.failed == 0 { 0 } else { 1 };
    print_json(json, &out.checks, out.failed)?;
    Ok(code)
}

/// Where the checks go: printed one a line, or kept for `--json`.
struct Out {
    json: bool,
    failed: usize,
    checks: Vec<Check>,
}

impl Out {
    fn report(&mut self, status: &'static str, what: String) {
        if self.json {
            self.checks.push(Check { status, what });
        } else {
            let tag = if status == "ok" { "ok  " } else { status };
            println!("{} {what}", if status == "fail" { "FAIL" } else { tag });
        }
    }

    /// One check passed or failed.
    fn line(&mut self, ok: bool, what: String) {
        if !ok {
            self.failed += 1;
        }
        self.report(if ok { "ok" } else { "fail" }, what);
    }
}

/// The account the servers run as, and whether it and prodhome can use
/// the state directory.
fn account_and_state(ctx: &Context, out: &mut Out) {
    let account = pg::Account::resolve(ctx.plan.run_as.as_deref());
    match &account {
        Ok(a) if a.switch => out.line(
            true,
            format!(
                "servers run as \"{}\" (uid {}) because prodhome runs as root",
                a.name, a.uid
            ),
        ),
        Ok(a) => out.line(true, format!("servers run as you (\"{}\")", a.name)),
        Err(e) => out.line(false, format!("account: {e}")),
    }
    let root = ctx.state.root();
    let existing = root.ancestors().find(|p| p.exists()).unwrap_or(root);
    let writable = tempfile_in(existing);
    out.line(
        writable,
        if writable {
            format!("state directory {} is writable", root.display())
        } else {
            format!(
                "state directory {}: cannot write in {}; choose another with --state-dir",
                root.display(),
                existing.display()
            )
        },
    );
    if let Ok(a) = &account {
        match pg::check_reachable(a, existing) {
            Ok(()) => out.line(true, format!("\"{}\" can reach the state directory", a.name)),
            Err(e) => out.line(false, e.to_string()),
        }
    }
}

/// Every fixed node port is free (or the lab already runs on it).
fn ports(ctx: &Context, out: &mut Out) {
    let running = ctx.state.running_daemon().is_some();
    for node in &ctx.plan.nodes {
        if let Some(port) = node.port {
            let free = running || daemon::offline::port_is_free(port);
            let at = node
                .port_at
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            out.line(
                free,
                if free {
                    format!("port {port} for {} is free", node.name)
                } else {
                    format!(
                        "port {port} for {}{at} is in use by another program: stop it or pick another port",
                        node.name
                    )
                },
            );
        }
    }
}

fn print_json(json: bool, checks: &[Check], failed: usize) -> Result<()> {
    if json {
        let doc = serde_json::json!({ "ok": failed == 0, "failed": failed, "checks": checks });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

fn tempfile_in(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".prodhome-doctor-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}
