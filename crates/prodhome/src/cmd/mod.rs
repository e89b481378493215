//! One file per subcommand.

mod chaos;
mod check;
mod controller;
mod dash;
mod data;
mod doctor;
mod down;
mod env;
mod events;
mod export;
mod hum;
mod image;
mod init;
mod link_serve;
mod logs;
mod metrics;
mod migrate;
mod psql;
mod report;
mod service_container;
mod soak;
mod status;
mod units;
mod up;
mod verify;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::context::Context;

/// Runs the parsed command; returns the exit code.
pub(crate) fn dispatch(cli: Cli) -> Result<i32> {
    let global = cli.global;
    match cli.command {
        Command::Init { dir, force } => init::run(&dir, force),
        // Before `Context::load`: a bad lab is check's output, not its failure.
        Command::Check { json } => check::run(&global, json),
        Command::Doctor { json } => doctor::run(&global, json),
        Command::Hum(args) => hum::run(&global, *args),
        // Inside a container: there is no lab file there.
        Command::LinkServe {
            control,
            token_file,
            seed,
            links,
        } => link_serve::run(control, &token_file, seed, links),
        // Started by the daemon's supervisor, with no lab file to load.
        Command::ServiceContainer { container } => service_container::run(&container),
        command => {
            let mut ctx = Context::load(&global)?;
            if let Command::Up { backend: Some(b), .. } | Command::Daemon { backend: Some(b), .. } = &command
            {
                ctx.plan.backend = *b;
            }
            in_lab(&ctx, command)
        }
    }
}

/// A command on the loaded lab: running it, or working with it.
fn in_lab(ctx: &Context, command: Command) -> Result<i32> {
    match command {
        Command::Verify { .. }
        | Command::Data(_)
        | Command::Metrics(_)
        | Command::Dash
        | Command::Report { .. }
        | Command::Migrate(_)
        | Command::Export { .. }
        | Command::Soak { .. }
        | Command::Chaos { .. } => tools(ctx, command),
        command => lifecycle(ctx, command),
    }
}

/// Starting and stopping the lab and its units, and looking into it.
fn lifecycle(ctx: &Context, command: Command) -> Result<i32> {
    match command {
        Command::Up {
            detach: false,
            timeout,
            ..
        } => up::foreground(ctx, timeout),
        Command::Up {
            detach: true,
            timeout,
            ..
        } => up::detached(ctx, timeout),
        Command::Daemon { timeout, .. } => up::daemon(ctx, timeout),
        Command::Controller { timeout } => controller::run(ctx, timeout),
        Command::Image(image) => image::run(ctx, image),
        Command::Down { purge } => down::run(ctx, purge),
        Command::Status { json } => status::run(ctx, json),
        Command::Psql { node, args } => psql::run(ctx, &node, &args),
        Command::Env { node } => env::run(ctx, &node),
        Command::Logs {
            node,
            follow,
            level,
            grep,
        } => logs::run(ctx, node.as_deref(), follow, level.as_deref(), grep.as_deref()),
        Command::Events { since, follow, json } => events::run(ctx, since, follow, json),
        Command::Restart { name } => units::run(ctx, &name, "restart"),
        Command::Stop { name } => units::run(ctx, &name, "stop"),
        Command::Start { name } => units::run(ctx, &name, "start"),
        Command::Secret { name } => units::secret(ctx, &name),
        _ => unreachable!("dispatched by in_lab"),
    }
}

/// Checking, loading, measuring and shaking the running lab.
fn tools(ctx: &Context, command: Command) -> Result<i32> {
    match command {
        Command::Verify {
            timeout,
            ledger,
            ledger_file,
            json,
        } => {
            let ledger = ledger_file.or_else(|| ledger.then(|| ctx.state.ledger()));
            verify::run(ctx, timeout, ledger, json)
        }
        Command::Data(command) => data::run(ctx, command),
        Command::Metrics(args) => metrics::run(ctx, &args),
        Command::Dash => dash::run(ctx),
        Command::Report { since, out, png } => report::run(ctx, since, &out, png.as_deref()),
        Command::Migrate(args) => migrate::run(ctx, &args),
        command @ Command::Export { .. } => export::from_command(ctx, command),
        Command::Soak {
            duration,
            seed,
            faults,
            rate,
            clients,
            dry_run,
            json,
        } => {
            let faults = faults
                .iter()
                .map(|f| {
                    ::chaos::FaultKind::parse(f.trim())
                        .ok_or_else(|| anyhow::anyhow!("unknown fault `{f}` in --faults"))
                })
                .collect::<Result<Vec<_>>>()?;
            soak::run(
                ctx,
                soak::SoakOptions {
                    duration,
                    seed,
                    faults,
                    rate,
                    clients,
                    dry_run,
                    json,
                },
            )
        }
        Command::Chaos {
            fault,
            target,
            duration,
            delay,
            jitter,
            bytes_per_sec,
            network,
            json,
        } => {
            let params = chaos::Params {
                duration,
                delay,
                jitter,
                bytes_per_sec,
                network,
            };
            chaos::run(ctx, &fault, target.as_deref(), params, json)
        }
        _ => unreachable!("dispatched by in_lab"),
    }
}
