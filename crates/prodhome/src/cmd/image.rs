//! `prodhome image build`: the images a lab runs from, packed offline from
//! this host's files and imported into the local Docker Engine: the lab's
//! Postgres image, and the controller's (this prodhome binary), which the
//! files `prodhome export` writes run beside the nodes.

use std::time::Instant;

use anyhow::{Context as _, Result};
use engine::{BuiltImage, ImageSpec};

use crate::cli::ImageCommand;
use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, command: ImageCommand) -> Result<i32> {
    let ImageCommand::Build { json, repository } = command;
    let version = ctx.plan.postgres_version;
    let mut postgres = ImageSpec::postgres(version);
    // A benchmark's cold build (another repository): the Postgres image only.
    let controller = match &repository {
        Some(_) => None,
        None => Some(controller_image()?),
    };
    if let Some(repository) = repository {
        postgres = postgres.in_repository(repository);
    }
    let started = Instant::now();
    let (built, controller) = runtime()?.block_on(async {
        let engine = engine::Engine::connect().await?;
        let built = engine.build_image(&postgres).await?;
        let controller = match &controller {
            Some(spec) => Some(engine.build_image(spec).await?),
            None => None,
        };
        anyhow::Ok((built, controller))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let mut doc = describe(&built);
        doc["seconds"] = seconds.into();
        if let Some(c) = &controller {
            doc["controller"] = describe(c);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let what = format!("this host's PostgreSQL {version} files");
    println!("{}", line(&built, &what));
    if let Some(c) = &controller {
        println!("{}", line(c, "this prodhome binary, for `prodhome controller`"));
    }
    Ok(0)
}

/// The controller's image: this executable, as `prodhome export` pins it.
pub(crate) fn controller_image() -> Result<ImageSpec> {
    let exe = std::env::current_exe().context("finding this prodhome binary")?;
    Ok(ImageSpec::controller(exe, export::model::STATE_DIR))
}

fn describe(built: &BuiltImage) -> serde_json::Value {
    serde_json::json!({
        "image": built.reference,
        "id": built.id,
        "cached": built.cached,
        "packed_bytes": built.packed_bytes,
    })
}

fn line(built: &BuiltImage, from: &str) -> String {
    if built.cached {
        format!("{} (cached: {from} are unchanged)", built.reference)
    } else {
        let mb = built.packed_bytes as f64 / 1_000_000.0;
        format!("{} (built from {from}: {mb:.0} MB)", built.reference)
    }
}
