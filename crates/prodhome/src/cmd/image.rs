//! `prodhome image build`: the lab's Postgres image, packed offline from
//! this host's PostgreSQL files and imported into the local Docker Engine.

use std::time::Instant;

use anyhow::Result;

use crate::cli::ImageCommand;
use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, command: ImageCommand) -> Result<i32> {
    let ImageCommand::Build { json, repository } = command;
    let version = ctx.plan.postgres_version;
    let mut spec = engine::ImageSpec::postgres(version);
    if let Some(repository) = repository {
        spec = spec.in_repository(repository);
    }
    let started = Instant::now();
    let built = runtime()?.block_on(async {
        let engine = engine::Engine::connect().await?;
        engine.build_image(&spec).await
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let doc = serde_json::json!({
            "image": built.reference,
            "id": built.id,
            "cached": built.cached,
            "packed_bytes": built.packed_bytes,
            "seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if built.cached {
        println!(
            "{} (cached: this host's PostgreSQL {version} files are unchanged)",
            built.reference
        );
    } else {
        let mb = built.packed_bytes as f64 / 1_000_000.0;
        println!(
            "{} (built from this host's PostgreSQL {version} files: {mb:.0} MB in {seconds:.1} s)",
            built.reference
        );
    }
    Ok(0)
}
