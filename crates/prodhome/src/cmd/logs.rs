//! `prodhome logs NODE [-f]`.

use std::io::{Read, Seek, Write};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::context::Context;

pub(crate) fn run(ctx: &Context, node: &str, follow: bool) -> Result<i32> {
    let path = if node == "daemon" {
        ctx.state.daemon_log()
    } else {
        ctx.check_node(node)?;
        ctx.state.node_log(node)
    };
    let mut file = std::fs::File::open(&path)
        .with_context(|| format!("no log at {} yet: has the lab been brought up?", path.display()))?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out)?;
    out.flush()?;
    if !follow {
        return Ok(0);
    }
    loop {
        let pos = file.stream_position()?;
        if std::fs::metadata(&path)?.len() < pos {
            // Truncated or replaced: start again from the top.
            file = std::fs::File::open(&path)?;
        }
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        out.write_all(&chunk)?;
        out.flush()?;
    }
}
