//! Test helpers: points for every panel, external servers that die with
//! the test, and an async poll with a deadline.

use model::Point;

pub(crate) const S: i64 = 1_000_000_000;
pub(crate) const NODES: [&str; 3] = ["publisher", "subscriber1", "subscriber2"];

/// One point per second from `t0` for `secs` seconds for every series
/// every panel reads, on three nodes; locks split by two modes and two
/// locktypes so that grouping has something to sum. Values count the
/// seconds (0, 1, 2, ...), locks 1 to 3.
pub(crate) fn panel_points(t0: i64, secs: i64) -> Vec<Point> {
    let mut points = Vec::new();
    for i in 0..secs {
        let ts = t0 + i * S;
        for node in NODES {
            for panel in web::PANELS {
                for q in panel.queries {
                    let mut p = Point::new(q.measurement, ts).tag("node", node);
                    for tag in q.by.iter().filter(|t| **t != "node") {
                        p = p.tag(*tag, format!("{tag}-a"));
                    }
                    for (tag, value) in q.only {
                        p = p.tag(*tag, *value);
                    }
                    if q.measurement == "locks" && q.field == "count" {
                        for (mode, locktype) in [
                            ("Share", "relation"),
                            ("Share", "tuple"),
                            ("Exclusive", "relation"),
                        ] {
                            points.push(
                                p.clone()
                                    .tag("mode", mode)
                                    .tag("locktype", locktype)
                                    .int("count", 1 + i % 3),
                            );
                        }
                    } else {
                        points.push(p.float(q.field, i as f64));
                    }
                }
            }
        }
    }
    points
}

pub(crate) use testkit::{Server, poll_async as poll};
