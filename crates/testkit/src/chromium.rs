//! Headless Chromium for the dashboard's tests: in its own process group,
//! killed with every helper it started when done or when the test fails.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll;

/// Debian's package; `.ci/run` installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Loads `url` in a `window` ("1280,800") with `extra` arguments (e.g.
/// `--dump-dom`, `--screenshot=PATH`), lets the page run `budget_ms` of
/// virtual time (its polls included), and returns what Chromium printed.
pub fn run(profile: &Path, window: &str, budget_ms: u32, extra: &[&str], url: &str) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test needs Debian's `chromium` package; `bash .ci/run` installs it"
    );
    let mut child = Command::new(CHROMIUM)
        // Without the background-networking flags Chromium keeps trying
        // hosts this machine cannot reach.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg("--hide-scrollbars")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={window}"))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {CHROMIUM}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut guard = Group(child);
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    // Chromium exits once done; the guard kills it should it hang.
    poll("chromium to finish", Duration::from_secs(90), || {
        guard.0.try_wait().ok().flatten()
    });
    reader.join().unwrap_or_default()
}

/// Kills a process group on drop.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
        let _ = self.0.wait();
    }
}
