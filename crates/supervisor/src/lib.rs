//! The supervisor: starts long-lived processes, watches them, restarts the
//! ones that die, and reports everything that happens as [`model::Event`]s.
//!
//! A [`UnitSpec`] says how to run one process (argv, account, log file, stop
//! signal, readiness probe, restart policy). [`spawn_unit`] gives it a task of
//! its own and returns a [`UnitHandle`]: commands go in over a channel, the
//! current [`UnitStatus`] comes out over a `watch`, events go to the shared
//! event channel the daemon drains into the event log. No state is shared
//! under a mutex.
//!
//! Every child runs in its own process group, so stopping it signals the whole
//! tree and escalates to SIGKILL after a timeout; and so a child outlives a
//! daemon that is killed -9, to be found again by the next one. Whether to
//! restart is decided by the pure function [`policy::decide`].

pub mod policy;
mod process;
mod unit;

pub use policy::{Decision, RestartMode, RestartPolicy};
pub use process::{alive, signal_group, stop_pid};
pub use unit::{Probe, UnitHandle, UnitSpec, UnitState, UnitStatus, spawn_unit};
