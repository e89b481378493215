//! The dashboard end to end: a lab with hum and fast sampling, a subscriber
//! killed with SIGKILL, and the page read back by a real headless Chromium:
//! every panel drew data, and the kill is drawn as an annotation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{TestLab, poll};

use crate::BIN;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// The seed lab's nodes and replication with background traffic and
/// sampling five times a second.
const LAB: &str = r#"
name = "dashboard"
postgres_version = 15

[postgres.publisher]
[postgres.subscriber1]
[postgres.subscriber2]

[replication.books]
publisher = "publisher"
subscribers = ["subscriber1", "subscriber2"]
schema = "schema.sql"
tables = ["books"]

[hum]
node = "publisher"
workload = "books"
clients = 2
rate = 50

[sample]
interval = "200ms"
"#;

#[test]
fn the_dashboard_draws_every_panel_and_marks_a_killed_node() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test needs Debian's `chromium` package; `bash .ci/run` installs it"
    );
    let lab = TestLab::new(BIN)
        .lab(LAB)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    let api = lab.status()["api"].as_str().unwrap().to_string();
    let out = lab.run(&["dash"]);
    assert!(out.status.success(), "{}", crate::text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{api}/"));

    // What the publisher's log tells (pglog): a division by zero, a
    // unique violation and a slow statement, each drawn by its panel.
    for sql in [
        "SELECT 1/0",
        "CREATE TEMP TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1)",
    ] {
        let out = lab.run(&["psql", "publisher", "-v", "ON_ERROR_STOP=1", "-Atc", sql]);
        assert!(!out.status.success(), "{sql} fails");
    }
    // A second's sleep: slow in the log, and more total time than any
    // other statement on the publisher so far (top statements).
    lab.sql("publisher", "SELECT pg_sleep(1)");
    // The same errors in `prodhome logs`, filtered by level and text.
    // (The collector writes it a moment after psql hears of it.)
    let errors = poll("the error in prodhome logs", Duration::from_secs(30), || {
        let out = lab.run(&["logs", "publisher", "--level", "error", "--grep", "division"]);
        assert!(out.status.success(), "{}", crate::text(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("ERROR:  division by zero").then_some(text)
    });
    assert!(
        !errors.contains("LOG:") && !errors.contains("duplicate key"),
        "{errors}"
    );
    wait_for_every_panel(&api);
    let pid = lab.node("subscriber1")["pid"].as_u64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).unwrap();
    poll("subscriber1 restarted and ready", Duration::from_secs(60), || {
        let n = lab.node("subscriber1");
        (n["state"] == "ready" && n["restarts"].as_u64() >= Some(1)).then_some(())
    });

    let profile = lab.dir().join("chromium");
    let dom = testkit::chromium::run(&profile, "1280,800", 8000, &["--dump-dom"], &format!("{api}/"));
    // Optional panels (container stats) have no data on a native lab.
    for panel in web::PANELS.iter().filter(|p| !p.optional) {
        let points = data_points(&dom, panel.id)
            .unwrap_or_else(|| panic!("no panel {} in the page:\n{dom}", panel.id));
        assert!(points > 1, "panel {} drew {points} points:\n{dom}", panel.id);
    }
    let errors = section(&dom, "log_errors");
    for code in ["22012", "23505"] {
        assert!(errors.contains(code), "no {code} in the errors panel:\n{errors}");
    }
    let sleep = pglog::query_hash("SELECT pg_sleep($1)");
    let slow = section(&dom, "slow_statements");
    assert!(
        slow.contains(&sleep),
        "no pg_sleep ({sleep}) in the slow statements panel:\n{slow}"
    );
    let top = section(&dom, "top_statements");
    assert!(
        top.contains(">publisher SELECT pg_sleep($1)<"),
        "no pg_sleep on the publisher among the top statements:\n{top}"
    );
    assert!(
        dom.contains(r#"class="annotation" data-kind="exited" data-unit="subscriber1""#),
        "the kill of subscriber1 is not drawn:\n{dom}"
    );
    assert!(dom.contains(r#"data-healthy=""#), "no status bar:\n{dom}");

    // The screenshot the README shows: the whole page at 1280 px wide.
    let shot = std::env::var_os("PRODHOME_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| lab.dir().join("dashboard.png"));
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    testkit::chromium::run(&profile, "1280,2150", 8000, &[&arg], &format!("{api}/"));
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} is no screenshot",
        shot.display()
    );
}

/// Polls `/api/dashboard` until every panel backed by the store has more
/// than one sample (health is drawn from events and status instead).
fn wait_for_every_panel(api: &str) {
    let mut last = String::new();
    let found = poll_quietly(Duration::from_secs(90), || {
        let body = http_get(&format!("{api}/api/dashboard?since=5m"))?;
        let d: Value = serde_json::from_str(&body).ok()?;
        let missing: Vec<&str> = web::PANELS
            .iter()
            .filter(|p| p.chart != web::Chart::Health && !p.optional)
            .filter(|p| {
                let series = d["panels"][p.id]["series"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let samples: usize = series
                    .iter()
                    .map(|s| {
                        s["values"]
                            .as_array()
                            .map_or(0, |v| v.iter().filter(|x| !x.is_null()).count())
                    })
                    .sum();
                samples < 2
            })
            .map(|p| p.id)
            .collect();
        last = format!("panels without data: {missing:?}");
        missing.is_empty().then_some(())
    });
    assert!(
        found.is_some(),
        "the store never had data for every panel: {last}"
    );
}

fn poll_quietly<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The page's `<section>` of panel `id`, up to the next panel.
pub(crate) fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("data-panel=\"{id}\"")).unwrap_or(dom.len());
    let rest = &dom[start..];
    &rest[..rest[1..].find("<section").map_or(rest.len(), |i| i + 1)]
}

/// `data-points` of `<section ... data-panel="ID" data-points="N">`.
pub(crate) fn data_points(dom: &str, id: &str) -> Option<u64> {
    let start = dom.find(&format!("data-panel=\"{id}\""))?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let value = tag.split("data-points=\"").nth(1)?;
    value[..value.find('"')?].parse().ok()
}

/// `GET url`'s body; `None` unless 200.
pub(crate) fn http_get(url: &str) -> Option<String> {
    testkit::http_get(url).and_then(|(code, body)| (code == 200).then_some(body))
}
