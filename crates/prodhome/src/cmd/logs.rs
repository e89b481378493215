//! `prodhome logs [NAME] [-f]`: one log, or all of them interleaved with a
//! name prefix.

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
