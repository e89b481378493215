//! `prodhome logs [NAME] [-f]`: one log, or all of them with a name prefix,
//! interleaved by the time each line starts with (what is there is merged
//! in time order; with `-f`, new lines follow as they come).

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::context::Context;

pub(crate) fn run(ctx: &Context, name: Option<&str>, follow: bool) -> Result<i32> {
    let sources: Vec<(String, PathBuf)> = match name {
        Some("daemon") => vec![("daemon".into(), ctx.state.daemon_log())],
        Some(name) => {
            ctx.check_unit(name)?;
            vec![(name.to_string(), ctx.state.node_log(name))]
        }
        None => ctx
            .unit_names()
            .into_iter()
            .map(|n| (n.clone(), ctx.state.node_log(&n)))
            .collect(),
    };
    let prefixed = name.is_none();
    let width = sources.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut tails: Vec<Tail> = Vec::new();
    for (name, path) in sources {
        let file = match std::fs::File::open(&path) {
            Ok(f) => Some(f),
            Err(_) if prefixed => None,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("no log at {} yet: has the lab been brought up?", path.display())
                });
            }
        };
        let prefix = if prefixed {
            format!("{name:>width$} | ")
        } else {
            String::new()
        };
        tails.push(Tail {
            path,
            file,
            prefix,
            partial: Vec::new(),
        });
    }
    let mut out = std::io::stdout().lock();
    let mut sofar = Vec::new();
    for tail in &mut tails {
        sofar.push(tail.lines_so_far()?);
    }
    for (i, line) in merge_by_time(&sofar) {
        out.write_all(tails[i].prefix.as_bytes())?;
        out.write_all(line)?;
    }
    loop {
        let mut any = false;
        for tail in &mut tails {
            any |= tail.pump(&mut out)?;
        }
        out.flush()?;
        if !follow {
            return Ok(0);
        }
        if !any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One log being read: whole lines are printed with the prefix; a line
/// still being written waits for its end.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    prefix: String,
    partial: Vec<u8>,
}

impl Tail {
    /// Every whole line written so far; the file is left at their end.
    fn lines_so_far(&mut self) -> Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        self.pump(&mut Lines(&mut lines))?;
        Ok(lines)
    }

    /// Prints what is new; true if there was anything.
    fn pump(&mut self, out: &mut impl Write) -> Result<bool> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        let pos = file.stream_position()?;
        if std::fs::metadata(&self.path)
            .map(|m| m.len() < pos)
            .unwrap_or(false)
        {
            // Rotated or truncated: start again from the top of the new file.
            *file = std::fs::File::open(&self.path)?;
        }
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            return Ok(false);
        }
        self.partial.extend_from_slice(&chunk);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            out.write_all(self.prefix.as_bytes())?;
            out.write_all(&line)?;
        }
        Ok(true)
    }
}

/// Collects each whole line [`Tail::pump`] writes (it writes a prefix, then
/// the line); prefixes are added again after the merge.
struct Lines<'a>(&'a mut Vec<Vec<u8>>);

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.last() == Some(&b'\n') {
            self.0.push(buf.to_vec());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines of several logs as one, in time order: (which log, line).
/// A line without a time of its own (a DETAIL line, a program that stamps
/// nothing) keeps its place after the line before it in its own log, and
/// each log's own order is kept.
fn merge_by_time(logs: &[Vec<Vec<u8>>]) -> Vec<(usize, &[u8])> {
    let keyed: Vec<Vec<(String, &[u8])>> = logs
        .iter()
        .map(|lines| {
            let mut key = String::new();
            lines
                .iter()
                .map(|line| {
                    if let Some(k) = time_key(line) {
                        key = k;
                    }
                    (key.clone(), line.as_slice())
                })
                .collect()
        })
        .collect();
    let mut next = vec![0; keyed.len()];
    let mut merged = Vec::new();
    loop {
        let pick = (0..keyed.len())
            .filter(|&i| next[i] < keyed[i].len())
            .min_by(|&a, &b| keyed[a][next[a]].0.cmp(&keyed[b][next[b]].0));
        let Some(i) = pick else {
            return merged;
        };
        merged.push((i, keyed[i][next[i]].1));
        next[i] += 1;
    }
}

/// A sortable time from a line starting `YYYY-MM-DD HH:MM:SS[.fff]` (or
/// with `T` between date and time): the servers' log_line_prefix and
/// RFC 3339 alike. Zones are not compared: one machine's logs share one.
fn time_key(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line.get(..19)?).ok()?;
    let shape = text.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ' || b == b'T',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let rest = &line[19..];
    let frac: String = match rest.first() {
        Some(b'.') => rest[1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .take(9)
            .map(|&b| b as char)
            .collect(),
        _ => String::new(),
    };
    Some(format!("{} {}{frac:0<9}", &text[..10], &text[11..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Vec<u8>> {
        text.lines().map(|l| format!("{l}\n").into_bytes()).collect()
    }

    #[test]
    fn logs_interleave_by_time_and_keep_continuations_with_their_line() {
        let a = lines(
            "2026-01-01 10:00:01.500 UTC [1] LOG: a1\n\tDETAIL a1\n2026-01-01 10:00:03.000 UTC [1] LOG: a2",
        );
        let b = lines("2026-01-01T10:00:02Z b1\n2026-01-01 10:00:01.4 UTC b0-late-clock");
        let merged: Vec<String> = merge_by_time(&[a, b])
            .into_iter()
            .map(|(i, l)| {
                format!(
                    "{i}:{}",
                    String::from_utf8_lossy(l).split_whitespace().last().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(merged, ["0:a1", "0:a1", "1:b1", "1:b0-late-clock", "0:a2"]);
    }

    #[test]
    fn only_lines_that_start_with_a_time_have_one() {
        assert!(time_key(b"2026-01-01 10:00:01 x").is_some());
        assert!(time_key(b"prodhome: dispatcher: started").is_none());
        assert!(time_key(b"2026").is_none());
        assert!(time_key(b"2026-01-01 10:00:01.1 x") > time_key(b"2026-01-01T10:00:01.02Z x"));
    }
}
