//! `prodhome restart|stop|start NAME` and `prodhome secret NAME`.

use anyhow::{Result, anyhow, bail};

use crate::context::{Context, runtime};

pub(crate) fn run(ctx: &Context, name: &str, action: &str) -> Result<i32> {
    ctx.check_unit(name)?;
    let info = ctx
        .state
        .running_daemon()
        .ok_or_else(|| anyhow!("lab {} is not running; `prodhome up -d` starts it", ctx.plan.name))?;
    runtime()?.block_on(ctx.control(&info)?.unit(name, action))?;
    eprintln!("prodhome: {action}: {name}");
    Ok(0)
}

/// Prints a `[secret.NAME]`: the one place prodhome shows one, on request.
pub(crate) fn secret(ctx: &Context, name: &str) -> Result<i32> {
    if !ctx.plan.secrets.iter().any(|s| s.name == name) {
        let names: Vec<&str> = ctx.plan.secrets.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "no [secret.{name}] in lab {}; secrets are {}",
            ctx.plan.name,
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
    }
    let secret = ctx
        .offline()
        .named_secret(name)?
        .ok_or_else(|| anyhow!("secret {name} is generated on the next `prodhome up`"))?;
    println!("{}", secret.expose());
    Ok(0)
}
