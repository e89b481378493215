//! hum, prodhome's load generator: the "background hum" of traffic that
//! makes a lab behave like production, and a benchmark client that does not
//! lie about latency.
//!
//! [`run`] drives a [`Workload`] (pgbench's TPC-B-like transaction, the
//! bookstore's `books` table, or a script in pgbench's syntax, see
//! [`script`]) from [`HumOptions`]: `clients` sessions against a [`Target`],
//! either closed loop ([`Rate::Max`]) or open loop at a fixed rate, where
//! every transaction has its slot on a timeline ([`schedule`]) and its
//! latency is measured from that slot — a stalled server shows as latency,
//! not as a politely lower rate (coordinated omission). Each transaction's
//! statements go out pipelined on prepared statements: one round trip per
//! transaction.
//!
//! Data flows out three ways: a [`Summary`] at the end (HdrHistogram
//! percentiles, errors by SQLSTATE, reconnects); [`model::Point`]s once a
//! second to an optional [`model::PointSender`] (the store's), for the
//! dashboard and the sinks (see `points.rs` for the fields); and the [`ledger`] of acknowledged writes,
//! which a later `verify` checks against the publisher. Lost connections
//! are re-opened with backoff and counted; nothing the server does ends a
//! run. Every random choice comes from ChaCha8 streams of one seed, so a
//! run, its rate spikes, long lock-holding transactions and disconnects
//! ([`Stochastic`]) can be played again.
//!
//! [`init`] creates what a workload needs: pgbench's tables, filled with
//! COPY like `pgbench -i`, or the books table. [`Workload::schema_sql`] is
//! the same tables' definitions without rows, for nodes that get the rows
//! by replication, and [`init_recreates`] says beforehand whether an init
//! will drop and recreate them.

mod client;
mod error;
pub mod ledger;
mod options;
mod points;
mod run;
pub mod schedule;
pub mod script;
mod stats;
mod workload;

use tokio::sync::watch;

pub use error::{Error, ErrorKind};
pub use options::{HumOptions, Rate, Stochastic, Target, Workload};
pub use stats::{Latency, Summary};

/// Runs the workload until the duration, the transaction limit, or `stop`
/// turning true (a dropped sender never stops it), and returns what it did.
/// Fails only before the run starts (options, connection, tables, script);
/// afterwards server errors and lost connections are counted, not returned.
pub async fn run(
    opts: HumOptions,
    points: Option<model::PointSender>,
    stop: watch::Receiver<bool>,
) -> Result<Summary, Error> {
    run::run(opts, points, stop).await
}

/// Makes `target` ready for `workload`, keeping what is already right:
/// tpcb creates and fills pgbench's tables at the scale unless complete
/// ones of that scale exist (other scales are dropped and recreated);
/// books creates the table (as the seed lab has it) and hum's id sequence
/// when missing; a script needs nothing.
pub async fn init(target: &Target, workload: &Workload) -> Result<(), Error> {
    init_with(target, workload, false).await
}

/// Like [`init`], but always drops and recreates pgbench's tables, as
/// `pgbench -i` does (`prodhome hum --init`). Never drops `books`.
pub async fn init_fresh(target: &Target, workload: &Workload) -> Result<(), Error> {
    init_with(target, workload, true).await
}

/// Whether [`init`] (or, with `fresh`, [`init_fresh`]) will create
/// `workload`'s tables on `target` anew, dropping any that are there:
/// tpcb does unless complete tables of its scale exist (always when
/// fresh); books and scripts never drop anything. A caller that keeps
/// copies of these tables elsewhere (subscribers) asks this first, because
/// those copies must then start over too.
pub async fn init_recreates(target: &Target, workload: &Workload, fresh: bool) -> Result<bool, Error> {
    let Workload::Tpcb { scale } = workload else {
        return Ok(false);
    };
    let client = client::connect(&target.config())
        .await
        .map_err(|e| run::connect_error(target, e))?;
    workload::tpcb::recreates(&client, *scale, fresh)
        .await
        .map_err(|e| {
            Error::with(
                ErrorKind::Setup,
                format!(
                    "{}: reading the pgbench tables failed: {}",
                    target.name,
                    error::describe(&e)
                ),
                e,
            )
        })
}

async fn init_with(target: &Target, workload: &Workload, fresh: bool) -> Result<(), Error> {
    if let Workload::Script { .. } = workload {
        return Ok(());
    }
    let client = client::connect(&target.config())
        .await
        .map_err(|e| run::connect_error(target, e))?;
    let result = match workload {
        Workload::Tpcb { scale } => workload::tpcb::init(&client, *scale, fresh).await,
        Workload::Books => workload::books::init(&client).await,
        Workload::Script { .. } => Ok(()),
    };
    result.map_err(|e| {
        Error::with(
            ErrorKind::Setup,
            format!(
                "{}: creating the {} tables failed: {}",
                target.name,
                workload.name(),
                error::describe(&e)
            ),
            e,
        )
    })
}
