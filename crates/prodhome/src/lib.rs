//! The `prodhome` command line: parses arguments with clap and dispatches to
//! one file per subcommand in `cmd/`. [`run`] returns the process exit code
//! (0 success, 1 failure, 2 usage), so `main` stays a line long and tests can
//! call it.
//!
//! Commands that need the running lab talk to the daemon through the `api`
//! crate's client; the ones that must work without it (`psql`, `env`,
//! `verify`, `logs`, `down` after the daemon was killed) read the state
//! directory through `daemon::StateDir`.

mod cli;
mod cmd;
mod context;

use std::ffi::OsString;

use clap::Parser;

/// Runs prodhome with `args` (including `argv[0]`) and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
