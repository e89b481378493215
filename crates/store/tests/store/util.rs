//! Test helpers: external servers that die with the test, and an async
//! poll with a deadline.

pub(crate) use testkit::{Server, poll_async as poll};
