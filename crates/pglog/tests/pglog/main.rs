//! pglog against real files and a real server (pgbadger as its peer).

mod files;
mod pgbadger;
mod server;
mod services;
mod util;
