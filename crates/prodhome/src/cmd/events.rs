//! `prodhome events [--since DUR] [-f] [--json]`: what happened to the lab,
//! oldest first. From the daemon's `GET /api/events` while it runs, from
//! the event log on disk (events.jsonl) when it does not, so a lab that was
//! brought down still tells its story.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use model::Event;

use crate::context::{Context, runtime};

/// How often `--follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

pub(crate) fn run(ctx: &Context, since: Option<Duration>, follow: bool, json: bool) -> Result<i32> {
    let mut since_ns = since.map_or(0, |d| model::now_ns() - d.as_nanos().min(i64::MAX as u128) as i64);
    let events = fetch(ctx, since_ns)?;
    let mut out = std::io::stdout().lock();
    if json && !follow {
        serde_json::to_writer_pretty(&mut out, &events)?;
        writeln!(out)?;
        return Ok(0);
    }
    let mut batch = events;
    loop {
        for event in &batch {
            if json {
                serde_json::to_writer(&mut out, event)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", line(event))?;
            }
            since_ns = since_ns.max(event.ts_ns + 1);
        }
        out.flush()?;
        if !follow {
            return Ok(0);
        }
        std::thread::sleep(FOLLOW_EVERY);
        batch = fetch(ctx, since_ns)?;
    }
}

/// The events at or after `since_ns`: the daemon's when it runs, else the
/// event log's.
fn fetch(ctx: &Context, since_ns: i64) -> Result<Vec<Event>> {
    match ctx.state.running_daemon() {
        Some(info) => Ok(runtime()?.block_on(api::Client::new(&info.api).events(since_ns))?),
        None => Ok(ctx.offline().events(since_ns)),
    }
}

/// `TIME  UNIT  KIND  DETAIL`, one event a line.
fn line(event: &Event) -> String {
    let full = event.to_string();
    let prefix = format!("{}: ", event.unit);
    let detail = full.strip_prefix(&prefix).unwrap_or(&full);
    format!(
        "{}  {:<18} {:<12} {detail}",
        utc(event.ts_ns),
        event.unit,
        event.kind.name()
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC, as the servers' logs stamp their lines.
fn utc(ts_ns: i64) -> String {
    let ms = ts_ns.div_euclid(1_000_000);
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = model::civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use model::EventKind;

    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        // 2024-02-29 23:59:59.999 UTC, a leap day.
        assert_eq!(utc(1_709_251_199_999_000_000), "2024-02-29 23:59:59.999");
        assert_eq!(utc(1_709_251_200_000_000_000), "2024-03-01 00:00:00.000");
    }

    #[test]
    fn a_line_has_time_unit_kind_and_detail() {
        let event = Event {
            ts_ns: 0,
            unit: "mirror_a".into(),
            kind: EventKind::Fault {
                fault: "pause".into(),
                target: "mirror_a".into(),
                phase: "on".into(),
            },
        };
        assert_eq!(
            line(&event),
            "1970-01-01 00:00:00.000  mirror_a           fault        fault pause on mirror_a: on"
        );
    }
}
