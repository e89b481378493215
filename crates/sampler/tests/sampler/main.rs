//! The sampler against real Postgres servers (testkit::PgNode): lock waits
//! made on purpose, replication lag while a subscriber is paused, rates
//! across a crash, and the loop's independence from a stuck node or a dead
//! sink.

mod collectors;
mod replication;
mod schedule;
mod statements;
mod util;
