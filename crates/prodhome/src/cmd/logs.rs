//! `prodhome logs [NAME] [--level L] [--grep TEXT] [-f]`: one log, or all
//! of them with a name prefix, interleaved by the time each entry starts
//! with (what is there is merged in time order; with `-f`, new entries
//! follow as they come). A node's log is its jsonlog, printed as the
//! stderr format shows it, beside what its postmaster printed before the
//! log collector ran (the supervisor's file). A docker node with neither
//! on the host is read through the engine, from its container's log.

mod container;
mod filter;
mod merge;
mod source;

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::context::Context;
use filter::Filter;
use source::{Entry, Source};

/// One unit's logs and the prefix its lines get.
struct Log {
    prefix: String,
    sources: Vec<Source>,
}

pub(crate) fn run(
    ctx: &Context,
    name: Option<&str>,
    follow: bool,
    level: Option<&str>,
    grep: Option<&str>,
) -> Result<i32> {
    let filter = Filter::new(level, grep)?;
    let names: Vec<String> = match name {
        Some(name) if name != "daemon" => {
            ctx.check_unit(name)?;
            vec![name.to_string()]
        }
        Some(_) => vec!["daemon".into()],
        None => ctx.unit_names(),
    };
    let prefixed = name.is_none();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut logs = Vec::new();
    for unit in &names {
        let sources = match sources_of(ctx, unit, !prefixed) {
            Ok(sources) => sources,
            Err(_) if container::print(ctx, unit, follow, &filter)? => return Ok(0),
            Err(e) => return Err(e),
        };
        let prefix = if prefixed {
            format!("{unit:>width$} | ")
        } else {
            String::new()
        };
        logs.push(Log { prefix, sources });
    }
    let mut out = std::io::stdout().lock();
    print_so_far(&mut logs, &filter, &mut out)?;
    if !follow {
        return Ok(0);
    }
    loop {
        let mut any = false;
        for log in &mut logs {
            for source in &mut log.sources {
                for entry in source.entries()? {
                    any = true;
                    print(&mut out, &log.prefix, &entry.text, entry.level, &filter)?;
                }
            }
        }
        out.flush()?;
        if !any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The logs of `unit`; with `required`, an error when none exists yet.
fn sources_of(ctx: &Context, unit: &str, required: bool) -> Result<Vec<Source>> {
    if unit == "daemon" {
        return Ok(vec![Source::text(ctx.state.daemon_log())]);
    }
    let text = ctx.state.node_log(unit);
    let mut sources = vec![(Source::text(text.clone()), text.clone())];
    if ctx.plan.node(unit).is_some() {
        let dir = pg::server_log_dir(&ctx.state.data_dir(unit));
        sources.push((Source::json(&dir), dir));
    }
    if required && !sources.iter().any(|(s, path)| s.exists(path)) {
        return Err(anyhow!(
            "no log at {} yet: has the lab been brought up?",
            text.display()
        ));
    }
    Ok(sources.into_iter().map(|(s, _)| s).collect())
}

/// Every entry written so far, all logs merged in time order.
fn print_so_far(logs: &mut [Log], filter: &Filter, out: &mut impl Write) -> Result<()> {
    let mut owners = Vec::new();
    let mut texts = Vec::new();
    let mut levels = Vec::new();
    for (i, log) in logs.iter_mut().enumerate() {
        for source in &mut log.sources {
            let entries: Vec<Entry> = source.entries()?;
            owners.push(i);
            levels.push(entries.iter().map(|e| e.level).collect::<Vec<_>>());
            texts.push(entries.into_iter().map(|e| e.text).collect::<Vec<_>>());
        }
    }
    let mut next = vec![0; texts.len()];
    for (source, text) in merge::merge_by_time(&texts) {
        let level = levels[source][next[source]];
        next[source] += 1;
        print(out, &logs[owners[source]].prefix, text, level, filter)?;
    }
    Ok(out.flush()?)
}

fn print(
    out: &mut impl Write,
    prefix: &str,
    text: &[u8],
    level: Option<usize>,
    filter: &Filter,
) -> Result<()> {
    if !filter.keeps(level, &String::from_utf8_lossy(text)) {
        return Ok(());
    }
    for line in text.split_inclusive(|&b| b == b'\n') {
        out.write_all(prefix.as_bytes())?;
        out.write_all(line)?;
    }
    Ok(())
}
