//! The sinks points and events are fanned out to. Each runs on its own
//! (the embedded one on a thread, since SQLite blocks; the others as tokio
//! tasks) and reads from its own bounded queue.

pub(crate) mod embedded;
pub(crate) mod influx;
pub(crate) mod influx_admin;
pub(crate) mod influx_options;
pub(crate) mod prometheus;
