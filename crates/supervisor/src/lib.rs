//! The supervisor: starts long-lived processes (postgres nodes and app
//! services), watches them, restarts the ones that die, and reports
//! everything that happens as [`model::Event`]s.
//!
//! A [`UnitSpec`] says how to run one process: argv, environment, account,
//! log file and [`LogMode`], stop signal and timeout, [`RestartPolicy`], and
//! two optional [`ProbeSpec`]s. [`spawn_unit`] gives it a task of its own and
//! returns a [`UnitHandle`]: commands go in over a channel, the current
//! [`UnitStatus`] (state, pid, restarts, last exit, since) comes out over a
//! `watch`, events go to the shared event channel the daemon drains into the
//! event log. No state is shared under a mutex.
//!
//! The lessons of running services are the defaults:
//! - *Started is not listening*: a unit with a `ready` probe (tcp, http,
//!   exec, or code) stays `Starting` until the probe passes; a `live` probe,
//!   once ready, gets a hung unit restarted. Dependents wait with
//!   [`UnitHandle::wait_for`] for the [`Condition`] they need, in the waves
//!   [`start_order`] computes from `depends_on`.
//! - *Restarts are never silent*: every start, exit, restart, probe failure
//!   and crash loop is an event. Whether to restart is decided by the pure
//!   function [`policy::decide`]: exponential backoff, and after
//!   `max_restarts` failures in a row a `crash_loop` event, a `gave_up`
//!   event, and the unit left `Failed`.
//! - *A first start that fails fails the same way again*: a unit that ends
//!   before it was ever ready (a config typo, a program that is not there)
//!   is not restarted at all: `gave_up`, `Failed`, and whoever waits for it
//!   hears at once. Backoff is for units that were ready once.
//! - *Logs are kept, and bounded*: [`LogMode::Rotated`] pipes stdout and
//!   stderr through the supervisor into a log rotated by size.
//!   [`LogMode::File`] hands the log file to the child directly instead: the
//!   mode for postgres nodes, which must outlive a daemon killed -9 (a piped
//!   child would get EPIPE once the daemon is gone; a service in rotated
//!   mode is therefore stopped and started again by the next daemon).
//!
//! Every child runs in its own process group, so stopping it signals the
//! whole tree and escalates to SIGKILL after a timeout; and so a child
//! outlives a daemon that is killed -9, to be found again by the next one.

mod handle;
mod job;
mod log;
mod order;
pub mod policy;
mod probe;
mod process;
mod run;
mod unit;

pub use handle::{UnitHandle, spawn_unit};
pub use job::{Finished, JobError, run_with_timeout};
pub use log::{LineTap, LogMode};
pub use order::{Condition, OrderError, start_order};
pub use policy::{Decision, Ending, RestartMode, RestartPolicy};
pub use probe::{Probe, ProbeCheck, ProbeSpec};
pub use process::{alive, process_tree, signal_group, signal_tree, stop_pid};
pub use unit::{UnitSpec, UnitState, UnitStatus};
