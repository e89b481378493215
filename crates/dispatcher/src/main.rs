//! `dispatcher`: see the library's overview (src/lib.rs). Settings come from
//! DATABASE_URL, PORT, BATCH and INTERVAL_MS.

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // The library's warnings (lost connections, retries) go to stderr, which
    // the supervisor keeps in the service's log; no colours in a file.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatcher: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = dispatcher::Config::from_env()?;
    let (stop, stopped) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop.send(true);
    });
    dispatcher::run(config, stopped).await?;
    Ok(())
}
