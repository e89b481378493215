//! One file per subcommand.

mod doctor;
mod down;
mod env;
mod init;
mod logs;
mod psql;
mod status;
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
        Command::Doctor => doctor::run(&global),
        command => {
            let ctx = Context::load(&global)?;
            match command {
                Command::Up {
                    detach: false,
                    timeout,
                } => up::foreground(&ctx, timeout),
                Command::Up {
                    detach: true,
                    timeout,
                } => up::detached(&ctx, timeout),
                Command::Daemon { timeout } => up::daemon(&ctx, timeout),
                Command::Down { purge } => down::run(&ctx, purge),
                Command::Status { json } => status::run(&ctx, json),
                Command::Psql { node, args } => psql::run(&ctx, &node, &args),
                Command::Env { node } => env::run(&ctx, &node),
                Command::Logs { node, follow } => logs::run(&ctx, &node, follow),
                Command::Verify { timeout, json } => verify::run(&ctx, timeout, json),
                Command::Init { .. } | Command::Doctor => unreachable!("handled above"),
            }
        }
    }
}
