//! The lab crate's integration tests: bad lab files as data
//! (`fixtures/bad/*.toml` beside the exact expected errors), and the seed lab
//! checked field by field; and the parser fuzzed
//! with mutated labs (`fuzz`).

mod bad_labs;
mod fuzz;
mod seed_lab;
