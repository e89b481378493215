//! `pg` against real servers it made itself: clusters created once and
//! adopted after, roles and passwords, a publication and subscription that
//! sync, the lag reading, convergence and write proofs, the DDL queue, and
//! settings read by the pinned binary. Each test has its own servers on free
//! ports in its own directory, so they run in parallel.

mod server;

mod clusters;
mod ddl;
mod initial;
mod replication;
mod settings;
