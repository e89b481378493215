//! `prodhome up`: foreground, detached, and the detached daemon itself.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use daemon::UpOptions;
use daemon::layout::LockHolder;

use crate::context::{Context, cache_dir, runtime};

/// Runs the lab in this process until Ctrl-C or SIGTERM.
pub(crate) fn foreground(ctx: &Context, timeout: Duration) -> Result<i32> {
    refuse_if_running(ctx)?;
    preflight(ctx)?;
    announce(ctx);
    run_daemon(options(ctx, timeout))
}

/// The process `up -d` starts: the same lab, logging to daemon.log.
pub(crate) fn daemon(ctx: &Context, timeout: Duration) -> Result<i32> {
    run_daemon(options(ctx, timeout))
}

/// The daemon's options for this lab, its progress on stderr.
pub(crate) fn options(ctx: &Context, timeout: Duration) -> UpOptions {
    UpOptions {
        plan: ctx.plan.clone(),
        state: ctx.state.clone(),
        cache_dir: cache_dir(),
        echo: true,
        ready_timeout: timeout,
        external: None,
    }
}

/// Runs the daemon in this process until it is asked to stop.
pub(crate) fn run_daemon(opts: UpOptions) -> Result<i32> {
    init_logging();
    daemon_runtime()?.block_on(async {
        // Listening for SIGHUP replaces its default action (exit): a closed
        // terminal must not stop a lab.
        let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        daemon::run(opts).await
    })?;
    Ok(0)
}

/// The daemon's runtime: one thread for everything it runs (links,
/// sampler, API, supervision) unless `PRODHOME_DAEMON_THREADS=N` asks for a
/// multi-thread runtime of N workers (bench/observer.sh compares the two;
/// BENCHMARKS.md, "observer effect").
fn daemon_runtime() -> Result<tokio::runtime::Runtime> {
    let threads = match std::env::var("PRODHOME_DAEMON_THREADS") {
        Ok(v) => v.parse::<usize>().ok().filter(|n| *n > 0).with_context(|| {
            format!("PRODHOME_DAEMON_THREADS={v:?}: expected a number of threads, 1 or more")
        })?,
        Err(_) => 1,
    };
    if threads == 1 {
        return runtime();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Where the library crates' `tracing` goes in a daemon process: its
/// stderr, which is daemon.log for a detached daemon (see `spawn_daemon`)
/// and the terminal for `up` in the foreground. Info and up; no colours,
/// since it mostly ends up in a file. Once per process: a second call is a
/// no-op.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

/// Starts the daemon in the background and returns once the lab is ready
/// (exit 0), or the daemon failed (exit 1, with its reason). A daemon that
/// is already running is waited for; one that was killed is taken over,
/// however soon after its death this runs.
pub(crate) fn detached(ctx: &Context, timeout: Duration) -> Result<i32> {
    match ctx.state.lock_holder() {
        LockHolder::Alive(pid) => {
            if let Some(info) = ctx.state.running_daemon() {
                check_same_lab(ctx, &info)?;
            }
            eprintln!(
                "prodhome: lab {} is already running (pid {pid}); waiting for it to be ready",
                ctx.plan.name
            );
            if let Waited::Exit(code) = wait_ready(ctx, None, timeout)? {
                return Ok(code);
            }
            eprintln!("prodhome: that daemon (pid {pid}) exited while we waited; starting the lab again");
        }
        LockHolder::Dying(pid) => {
            eprintln!(
                "prodhome: the daemon of lab {} (pid {pid}) is exiting; taking over",
                ctx.plan.name
            );
        }
        LockHolder::Free => {}
    }
    preflight(ctx)?;
    spawn_daemon(ctx, timeout)
}

/// Starts `prodhome __daemon` in its own process group, logging to
/// daemon.log, and waits for the lab to be ready.
fn spawn_daemon(ctx: &Context, timeout: Duration) -> Result<i32> {
    announce(ctx);
    ctx.state
        .create(&ctx.plan.name)
        .with_context(|| format!("creating {}", ctx.state.root().display()))?;
    let log_path = ctx.state.daemon_log();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        // The daemon's output tells of the lab's data: the owner's alone.
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let start_of_log = log.metadata()?.len();
    let exe = std::env::current_exe().context("finding the prodhome executable")?;
    let child = Command::new(exe)
        .args(ctx.global_args())
        .arg("__daemon")
        .arg("--timeout")
        .arg(format!("{}ms", timeout.as_millis()))
        .args(["--backend", ctx.plan.backend.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // Its own process group: Ctrl-C in this terminal is not for it.
        .process_group(0)
        .spawn()
        .context("starting the prodhome daemon")?;
    let waited = wait_ready(
        ctx,
        Some((child, start_of_log)),
        timeout + Duration::from_secs(30),
    )?;
    match waited {
        Waited::Exit(code) => Ok(code),
        // Not reached: with our own child, its exit is the answer.
        Waited::Gone => Ok(1),
    }
}

/// How waiting for a daemon ended.
enum Waited {
    /// The lab is ready (0) or our daemon failed (1): the command's exit code.
    Exit(i32),
    /// The daemon we did not start is gone (killed, or stopped by `down`).
    Gone,
}

fn wait_ready(
    ctx: &Context,
    mut child: Option<(std::process::Child, u64)>,
    timeout: Duration,
) -> Result<Waited> {
    let rt = runtime()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((c, start)) = child.as_mut()
            && let Some(status) = c.try_wait()?
        {
            let log = read_from(&ctx.state.daemon_log(), *start);
            eprintln!(
                "prodhome: the lab did not come up (daemon {status}):\n{}",
                log.trim_end()
            );
            return Ok(Waited::Exit(1));
        }
        if let Some(info) = ctx.state.running_daemon() {
            // A failed phase needs no case: the daemon is exiting, and
            // its log (or the next loop) says why.
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(5));
            if let Ok(status) = rt.block_on(ctx.client(&info).settled_status(wait))
                && status.ready()
            {
                crate::cmd::status::print_table(&status);
                println!("\ndashboard: {}/", status.api);
                return Ok(Waited::Exit(0));
            }
        } else if child.is_none() && !matches!(ctx.state.lock_holder(), LockHolder::Alive(_)) {
            return Ok(Waited::Gone);
        }
        if Instant::now() >= deadline {
            if let Some(info) = ctx.state.running_daemon()
                && let Ok(client) = ctx.control(&info)
            {
                let _ = rt.block_on(client.down());
            }
            bail!(
                "the lab was not ready within {:?}; it was stopped. See `prodhome logs daemon` and `prodhome logs NODE`",
                timeout
            );
        }
        // Ready but a subscription not yet streaming, or no daemon.json
        // yet: a status then costs the daemon a few milliseconds.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lab's mistakes only this machine reveals (settings its Postgres does
/// not know, programs that are not there), all at once and located, before
/// any state or process exists. Missing binaries are left to the daemon,
/// which says so with the place `postgres_version` was written.
fn preflight(ctx: &Context) -> Result<()> {
    // The binary is asked only about settings: finding it runs `postgres
    // --version`, which a lab without settings need not wait for here.
    let has_settings = ctx.plan.nodes.iter().any(|n| !n.settings.is_empty());
    let bins = has_settings
        .then(|| pg::find_binaries(ctx.plan.postgres_version).ok())
        .flatten();
    let errors = daemon::offline::preflight(&ctx.plan, bins.as_ref());
    if errors.is_empty() {
        return Ok(());
    }
    Err(anyhow::Error::new(lab::LabErrors(errors)))
}

fn refuse_if_running(ctx: &Context) -> Result<()> {
    if let Some(info) = ctx.state.running_daemon() {
        check_same_lab(ctx, &info)?;
        bail!(
            "lab {} is already running (pid {}, api {}); use `prodhome status`, or `prodhome down` first",
            ctx.plan.name,
            info.pid,
            info.api
        );
    }
    Ok(())
}

fn check_same_lab(ctx: &Context, info: &api::DaemonInfo) -> Result<()> {
    if info.fingerprint != ctx.plan.fingerprint {
        let file = ctx
            .plan
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "the seed lab".into());
        bail!(
            "{file} (or a schema file it names) changed since lab {} was started (pid {}). \
             A running lab is not changed in place: run `prodhome down`, then `prodhome up` to apply the change",
            info.lab,
            info.pid
        );
    }
    Ok(())
}

fn announce(ctx: &Context) {
    if ctx.seed {
        eprintln!(
            "prodhome: no {} here, so this is the built-in seed lab `{}` (`prodhome init` writes it out to edit)",
            lab::init::SEED_LAB_FILE,
            ctx.plan.name
        );
    }
    eprintln!("prodhome: state in {}", ctx.state.root().display());
}

fn read_from(path: &std::path::Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default()).into_owned()
}
