//! `prodhome init`: write the seed lab.

use std::path::Path;

use anyhow::{Context, Result};

pub(crate) fn run(dir: &Path, force: bool) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = lab::init::write_seed(dir, force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{e}; keep it, or run `prodhome init --force` to overwrite")
        } else {
            anyhow::anyhow!("writing the seed lab into {}: {e}", dir.display())
        }
    })?;
    for path in written {
        println!("wrote {}", path.display());
    }
    println!("next: `prodhome up` (foreground) or `prodhome up -d` (background)");
    Ok(0)
}
