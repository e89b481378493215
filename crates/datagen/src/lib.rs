//! Burly synthetic data for the user's own schema.
//!
//! Data flows one way: [`catalog::read`] reads the tables' definitions from a
//! node (types, NOT NULL, defaults, identity, PK/UNIQUE/FK/CHECK) into
//! [`catalog::Table`]s; [`plan::plan`] turns them plus the user's
//! [`Request`] (rows, overrides) into a [`plan::FillPlan`]: per table and
//! column the generator and why, tables ordered parents first, or a
//! [`Error`] naming the table, column and constraint it cannot satisfy;
//! [`copy::fill`] streams each table's rows with COPY (binary where every
//! column has a binary encoding, `encode`) in batches, each batch its own
//! transaction recorded in `prodhome.data_fill_batches` (so a re-run adds
//! nothing twice and an interrupted run writes only the batches that never
//! committed), several COPY streams per table fed by generator threads
//! (`stream`, `rows`) and tables of one FK depth in parallel; an empty
//! table's keys are built after its load ([`keys`]).
//!
//! Every value comes from a ChaCha8 stream seeded by (seed, table, column,
//! batch), so the same seed gives the same rows whatever the parallelism.
//! This crate knows nothing of lab files: the CLI maps `[data.TABLE]` onto
//! [`Request`].

pub mod catalog;
pub mod copy;
mod encode;
mod error;
pub mod generator;
pub mod keys;
pub mod ledger;
pub mod plan;
mod rows;
mod stream;

pub use copy::{FillOptions, FillReport, Progress, TableReport, default_streams, fill};
pub use error::Error;
pub use generator::Named;
pub use plan::{FillPlan, Request, Rows, TableOverride, plan};
pub use rows::CopyFormat;
