//! The lab crate's integration tests: bad lab files as data
//! (`fixtures/bad/*.toml` beside the exact expected errors), and the seed lab
//! checked field by field.

mod bad_labs;
mod seed_lab;
