//! `prodhome report [--since 1h] --out run.html [--png run.png]`: the run's
//! story as one self-contained HTML page (the `report` crate draws it).
//! Read offline — the lab file, `<state dir>/metrics.db` and
//! events.jsonl — so it works as well for a lab that is down.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use lab::{HumWorkload, Plan, Tables};
use report::charts::{CHARTS, Group};
use report::{LabInfo, NodeInfo, ReplicationInfo, Run, Series, ServiceInfo};

use crate::context::Context;

/// About this many samples per line across a chart.
const CHART_POINTS: u32 = 400;
/// Chromium's window width for `--png`; its height is the page's, guessed
/// ([`page_height`]): headless Chromium shoots the window, not the page.
const PNG_WIDTH: u32 = 1280;
/// How long Chromium may take to draw the page.
const PNG_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn run(ctx: &Context, since: Duration, out: &Path, png: Option<&Path>) -> Result<i32> {
    let run = gather(ctx, since)?;
    let page = report::render(&run);
    std::fs::write(out, &page).with_context(|| format!("writing the report to {}", out.display()))?;
    println!("wrote {} ({} KiB)", out.display(), page.len() / 1024);
    if let Some(png) = png {
        screenshot(out, png, page_height(&page))?;
        println!("wrote {}", png.display());
    }
    Ok(0)
}

/// The lab, the series and the events of the last `since`; the window
/// starts at the oldest thing found in it, so a short run fills the charts.
fn gather(ctx: &Context, since: Duration) -> Result<Run> {
    let until_ns = model::now_ns();
    let from_ns = until_ns - since.as_nanos().min(i64::MAX as u128) as i64;
    let mut notes = Vec::new();
    let events = ctx.offline().events(from_ns);
    let series = match read_series(ctx, from_ns, since) {
        Ok(series) => series,
        Err(e) => {
            notes.push(format!("No charts: {e}"));
            Vec::new()
        }
    };
    let oldest = events
        .iter()
        .map(|e| e.ts_ns)
        .chain(series.iter().filter_map(|s| s.points.first().map(|p| p.0)))
        .min();
    Ok(Run {
        lab: lab_info(ctx),
        since_ns: oldest.map_or(from_ns, |t| t.max(from_ns)).min(until_ns - 1),
        until_ns,
        series,
        events,
        notes,
    })
}

/// Every measurement a chart or table names. The log reader's counts are
/// read as stored: the tables sum them, and an average would not add up.
fn read_series(ctx: &Context, from_ns: i64, since: Duration) -> Result<Vec<Series>> {
    let reader = store::query::Reader::open(&ctx.state.metrics_db()).map_err(|e| anyhow!("{e}"))?;
    let step = (since / CHART_POINTS).max(Duration::from_secs(1));
    let mut done: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for chart in CHARTS {
        if done.contains(&chart.measurement) {
            continue;
        }
        done.push(chart.measurement);
        let step = if chart.group == Group::Logs {
            Duration::ZERO
        } else {
            step
        };
        let found = reader
            .series(chart.measurement, None, from_ns, step)
            .map_err(|e| anyhow!("{e}"))?;
        out.extend(found.into_iter().map(|s| Series {
            measurement: s.measurement,
            tags: s.tags,
            field: s.field,
            points: s.points,
        }));
    }
    Ok(out)
}

/// The lab as planned, with the ports it runs on; names, ports and
/// settings only (a service's environment, which may hold secrets, is left out).
fn lab_info(ctx: &Context) -> LabInfo {
    let plan: &Plan = &ctx.plan;
    let ports = ctx.offline().ports().clone();
    LabInfo {
        name: plan.name.clone(),
        nodes: plan
            .nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.name.clone(),
                port: ports.get(&n.name).copied().or(n.port),
                settings: n.settings.clone(),
            })
            .collect(),
        replications: plan
            .replications
            .iter()
            .map(|r| ReplicationInfo {
                name: r.name.clone(),
                publisher: r.publisher.clone(),
                subscribers: r.subscribers.clone(),
                tables: match &r.tables {
                    Tables::All => "all".into(),
                    Tables::List(list) => list.join(", "),
                },
            })
            .collect(),
        services: plan
            .services
            .iter()
            .map(|s| ServiceInfo {
                name: s.name.clone(),
                command: s.command.join(" "),
            })
            .collect(),
        hum: plan.hum.as_ref().map(hum_settings),
    }
}

fn hum_settings(h: &lab::HumPlan) -> Vec<(String, String)> {
    let workload = match &h.workload {
        HumWorkload::Tpcb => "tpcb".to_string(),
        HumWorkload::Books => "books".to_string(),
        HumWorkload::Script { path, .. } => path.display().to_string(),
    };
    let read_from = if h.read_from.is_empty() {
        "the write node".to_string()
    } else {
        h.read_from.join(", ")
    };
    [
        ("node", h.node.clone()),
        ("workload", workload),
        ("clients", h.clients.to_string()),
        ("rate", h.rate.map_or("max".into(), |r| format!("{r} tps"))),
        ("scale", h.scale.to_string()),
        ("reads from", read_from),
        ("long transactions", format!("{}", h.long_transactions)),
        ("disconnects", format!("{}", h.disconnects)),
        ("spikes", h.spikes.to_string()),
        ("seed", h.seed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Where Debian (and others) put Chromium.
const CHROMIUMS: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| CHROMIUMS.iter().map(move |name| dir.join(name)))
        .find(|p| p.is_file())
}

/// `report.html` drawn by headless Chromium into `png`, offline.
fn screenshot(html: &Path, png: &Path, height: u32) -> Result<()> {
    let chromium = find_chromium().ok_or_else(|| {
        anyhow!(
            "--png needs Chromium, and none of {} is on PATH: install it (Debian: `apt-get install chromium`), \
             or leave out --png (the HTML report was written)",
            CHROMIUMS.join(", ")
        )
    })?;
    let html = std::fs::canonicalize(html).with_context(|| format!("finding {}", html.display()))?;
    let png = absolute(png)?;
    let profile = tempfile::tempdir().context("making a profile directory for Chromium")?;
    // A file, not a pipe: Chromium's chatter cannot fill it and stall it.
    let log = profile.path().join("stderr.log");
    let stderr = std::fs::File::create(&log).context("making Chromium's log file")?;
    match std::fs::remove_file(&png) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("replacing {}", png.display()));
        }
        _ => {}
    }
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        // The page needs no network; nothing may leave the machine.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg("--hide-scrollbars")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={PNG_WIDTH},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", chromium.display()))?;
    let status = wait_or_kill(&mut child, PNG_TIMEOUT)?.ok_or_else(|| {
        anyhow!(
            "{} took longer than {PNG_TIMEOUT:?} to draw the report; the HTML report was written",
            chromium.display()
        )
    })?;
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() || !png.exists() {
        bail!(
            "{} could not draw the report ({status}): {}",
            chromium.display(),
            stderr
                .lines()
                .rfind(|l| !l.contains("dbus"))
                .unwrap_or("no message")
        );
    }
    Ok(())
}

/// The child's exit, or `None` when it ran past `limit` (then its whole
/// process group, Chromium's helpers included, is killed).
fn wait_or_kill(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// About how tall the page draws at [`PNG_WIDTH`]: table rows, charts
/// two to a row, the timeline, headings; a little too tall rather than cut.
fn page_height(page: &str) -> u32 {
    let rows = page.matches("<tr>").count() as u32;
    let charts = page.matches("<figure").count() as u32;
    let sections = page.matches("<section").count() as u32;
    let estimate = 300 + rows * 30 + charts.div_ceil(2) * 275 + sections * 90 + 240;
    estimate.clamp(800, 16_000)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(path))
}
