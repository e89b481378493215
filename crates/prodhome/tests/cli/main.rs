//! End-to-end tests of the `prodhome` binary against real Postgres servers.
//! Each test has its own lab directory, state and free ports, so they run in
//! parallel; `TestLab` stops everything it started when dropped.

mod apply_errors;
mod bad_input;
mod chaos;
mod check;
mod container_faults;
mod container_services;
mod containers;
mod crashes;
mod dashboard;
mod data;
mod data_interrupt;
mod ddl;
mod deploy;
mod dispatch;
mod export;
mod lifecycle;
mod logs_dashboard;
mod logs_influx;
mod logs_restart;
mod migrate;
mod owner;
mod prestart;
mod prodhome_tables;
mod readme;
mod replication;
mod report;
mod schemas;
mod services;
mod sinks;
mod soak;
mod truth;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_prodhome");

pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
