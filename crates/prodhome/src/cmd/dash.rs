//! `prodhome dash`: the running lab's dashboard URL, opened in a browser
//! when a person is at a terminal with one.

use std::io::IsTerminal;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use crate::context::Context;

pub(crate) fn run(ctx: &Context) -> Result<i32> {
    let Some(info) = ctx.state.running_daemon() else {
        bail!(
            "lab {} is not running, so there is no dashboard; `prodhome up -d` starts it",
            ctx.plan.name
        );
    };
    let url = format!("{}/", info.api.trim_end_matches('/'));
    println!("{url}");
    if std::io::stdout().is_terminal() {
        open(&url);
    }
    Ok(0)
}

/// Opens `url` with $BROWSER, or xdg-open when there is a display (without
/// one, xdg-open may start a text browser in this very terminal).
fn open(url: &str) {
    let graphical = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = match std::env::var("BROWSER") {
        Ok(browser) if !browser.is_empty() => browser,
        _ if graphical => "xdg-open".to_string(),
        _ => return,
    };
    // Not waited for: the browser lives on after prodhome exits.
    let started = Command::new(&opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = started {
        eprintln!("could not open a browser with {opener}: {e}");
    }
}
