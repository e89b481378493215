//! pglog against real files and a real server.

mod files;
mod server;
