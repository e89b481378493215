//! `prodhome export compose|stack|k8s --out DIR`: gathers what the export
//! crate's generators need — the lab file's text, the lab's passwords from
//! its secrets store (generated and kept when the lab has none yet), the
//! pinned image tags the engine crate's content hash gives — and writes
//! the files. Secrets go to files only; nothing here prints one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use engine::ImageSpec;
use export::{Images, Inputs, Target};

use crate::context::Context;

pub(crate) fn run(ctx: &Context, target: Target, out: &Path, force: bool) -> Result<i32> {
    let plan = &ctx.plan;
    let out = std::env::current_dir()
        .context("reading the current directory")?
        .join(out);
    let lab_toml = match &plan.file {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        None => lab::init::SEED_TOML.to_string(),
    };
    let mut offline = ctx.offline();
    let (credentials, named_secrets) = offline.secrets_or_generate()?;
    let credentials = credentials
        .into_iter()
        .map(|(node, c)| (node, (c.superuser, c.replication)))
        .collect();
    // Each node published where `psql` and `verify` on this machine look.
    let kept_ports = offline.keep_node_ports()?;
    let inputs = Inputs {
        plan,
        lab_toml,
        images: images(ctx)?,
        credentials,
        named_secrets,
        kept_ports,
        postgres_ids: postgres_ids()?,
    };
    let bundle = export::export(target, &inputs)?;
    let written = bundle.write(&out, force)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!("\n{}", next_step(target, &out, &plan.name));
    Ok(0)
}

/// What to run with the files, and what must be there first.
fn next_step(target: Target, out: &Path, lab: &str) -> String {
    let dir = out.display();
    let images = "the images must be in the engine first: `prodhome image build` builds the Postgres and the controller image";
    match target {
        Target::Compose => format!(
            "run it with:\n  docker compose -f {dir}/compose.yaml up -d   (or docker-compose)\n{images}"
        ),
        Target::Stack => format!(
            "deploy it with:\n  docker stack deploy --resolve-image never -c {dir}/stack.yaml {lab}\n{images}, on every machine of the Swarm"
        ),
        Target::K8s { cnpg } => {
            let operator = if cnpg {
                " (with the CloudNativePG operator installed)"
            } else {
                ""
            };
            format!(
                "apply it with:\n  kubectl apply -f {dir}{operator}\nthe images must be where the cluster pulls from"
            )
        }
    }
}

/// The pinned tags: the Postgres and controller images `prodhome image
/// build` makes, each service's program.
fn images(ctx: &Context) -> Result<Images> {
    let plan = &ctx.plan;
    let postgres = ImageSpec::postgres(plan.postgres_version).reference()?;
    let controller = crate::cmd::image::controller_image()?.reference()?;
    let mut services = BTreeMap::new();
    for service in &plan.services {
        let program = program(service)?;
        let reference = ImageSpec::binary(&program)
            .reference()
            .with_context(|| format!("packing service {}'s program {}", service.name, program.display()))?;
        services.insert(service.name.clone(), reference);
    }
    Ok(Images {
        postgres,
        controller,
        services,
    })
}

/// A service's program as `up` finds it: relative to its workdir when the
/// command names a path, else on PATH.
fn program(service: &lab::ServicePlan) -> Result<PathBuf> {
    let written = PathBuf::from(&service.command[0]);
    if written.components().count() > 1 {
        return Ok(service.workdir.join(written));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(&written))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            anyhow!(
                "service {}: no program {:?} on PATH; a service runs from an image of its program, so name it by path or install it",
                service.name,
                service.command[0]
            )
        })
}

/// The uid and gid the Postgres image runs as: the host's `postgres`
/// account, as the image pins it.
fn postgres_ids() -> Result<(u32, u32)> {
    let user = nix::unistd::User::from_name("postgres")
        .context("looking up the postgres account")?
        .ok_or_else(|| {
            anyhow!("no postgres account on this host: install PostgreSQL (the images are packed from it)")
        })?;
    Ok((user.uid.as_raw(), user.gid.as_raw()))
}
