//! Timestamps as the report prints them: UTC, like the servers' logs.

/// `HH:MM:SS` in UTC.
pub(crate) fn clock(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn full(ts_ns: i64) -> String {
    let days = ts_ns.div_euclid(86_400 * 1_000_000_000);
    let (y, m, d) = model::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {} UTC", clock(ts_ns))
}

/// A span as `1m 05s`, `4.2s` or `350ms`.
pub(crate) fn span(ns: i64) -> String {
    let ms = ns / 1_000_000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc() {
        // 2026-12-01 21:46:05 UTC
        let ts = 1_796_161_565_000_000_000;
        assert_eq!(clock(ts), "21:46:05");
        assert_eq!(full(ts), "2026-12-01 21:46:05 UTC");
        assert_eq!(span(65_000_000_000), "1m 05s");
        assert_eq!(span(4_200_000_000), "4.2s");
    }
}
