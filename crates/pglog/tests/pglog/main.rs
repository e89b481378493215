//! pglog's tests against real files and real servers.
