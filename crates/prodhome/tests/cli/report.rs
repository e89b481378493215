//! `prodhome report` of a real run: a lab with hum, a column whose name is
//! markup, a fault applied and healed, a verify; the page has every
//! section, escapes the name, names no URL, and opens in headless Chromium
//! with networking cut off.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

/// The seed lab's nodes and replication with hum and fast sampling.
const LAB: &str = r#"
name = "story"
postgres_version = 15

[postgres.publisher]
[postgres.subscriber1]

[replication.books]
publisher = "publisher"
subscribers = ["subscriber1"]
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

const SECTIONS: [&str; 8] = [
    "lab", "ran", "charts", "logs", "timeline", "errors", "slow", "verdicts",
];

fn has_points(lab: &TestLab, measurement: &str) -> Option<()> {
    let out = lab.run(&["metrics", "-m", measurement, "--since", "5m", "--json"]);
    let series: Value = serde_json::from_slice(&out.stdout).ok()?;
    let points = series
        .as_array()?
        .iter()
        .filter_map(|s| s["points"].as_array())
        .map(Vec::len);
    (points.sum::<usize>() >= 5).then_some(())
}

#[test]
fn the_report_of_a_real_run_tells_it_all_and_opens_offline() {
    let lab = TestLab::new(BIN)
        .lab(LAB)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    poll("hum's and the sampler's points", Duration::from_secs(60), || {
        has_points(&lab, "hum")?;
        has_points(&lab, "replication")
    });
    // User data with markup in it: a column name, which DDL follow carries
    // into a ddl_applied event and so onto the page.
    lab.sql(
        "publisher",
        r#"alter table books add column "<img src=x onerror=alert(1)>" int"#,
    );
    poll("the DDL applied on subscriber1", Duration::from_secs(60), || {
        let events = std::fs::read_to_string(lab.state().join("events.jsonl")).ok()?;
        events.contains(r#""kind":"ddl_applied""#).then_some(())
    });
    assert_success(&lab.run(&["chaos", "pause", "subscriber1"]), "chaos pause");
    assert_success(&lab.run(&["chaos", "heal"]), "chaos heal");
    let verify = lab.run(&["verify"]);
    assert_success(&verify, "verify");
    assert!(
        !text(&verify).contains("not in the event log"),
        "{}",
        text(&verify)
    );

    let html = lab.dir().join("run.html");
    let png = lab.dir().join("run.png");
    let out = lab.run(&[
        "report", "--since", "10m", "--out", "run.html", "--png", "run.png",
    ]);
    assert_success(&out, "report");
    let page = std::fs::read_to_string(&html).unwrap();
    for id in SECTIONS {
        assert!(
            page.contains(&format!("<section id=\"{id}\">")),
            "no section {id}"
        );
    }
    assert!(page.contains("Lab story"), "the lab's name");
    assert!(page.contains("<td>pause subscriber1</td>"), "the fault's row");
    assert!(
        page.contains("<td>workload</td><td><code>books</code></td>"),
        "hum's settings"
    );
    assert!(
        page.contains("Throughput") && page.contains("Replication lag"),
        "the charts"
    );
    assert!(page.matches("<polyline").count() >= 3, "lines drawn");
    assert!(
        page.contains("<td>verify</td><td><span class=\"ok\">pass</span>"),
        "verify's verdict"
    );
    assert!(!page.contains("<img"), "unescaped user data in the page");
    assert!(
        page.contains("&quot;&lt;img src=x onerror=alert(1)&gt;&quot;"),
        "the DDL, escaped"
    );
    // Nothing on the page reaches out: no URL at all.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "a URL in the page"
    );
    assert_eq!(
        std::fs::read(&png).unwrap().get(..8),
        Some(&b"\x89PNG\r\n\x1a\n"[..]),
        "--png wrote a PNG"
    );
    opens_offline(&lab, &html);
}

/// The DOM Chromium built from the file, with every host unresolvable.
fn opens_offline(lab: &TestLab, html: &Path) {
    let profile = lab.dir().join("chromium");
    let url = format!("file://{}", html.display());
    let offline = ["--dump-dom", "--host-resolver-rules=MAP * ~NOTFOUND"];
    let dom = testkit::chromium::run(&profile, "1280,800", 2000, &offline, &url);
    for id in SECTIONS {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "no section {id} in the DOM"
        );
    }
    assert!(dom.contains("<svg") && dom.contains("Timeline"), "{dom}");
}

#[test]
fn a_lab_never_brought_up_still_gets_a_report_that_says_so() {
    let lab = TestLab::quiet(BIN);
    let out = lab.run(&["report", "--out", "r.html"]);
    assert_success(&out, "report");
    let page = std::fs::read_to_string(lab.dir().join("r.html")).unwrap();
    assert!(page.contains("No charts: no metrics store"), "{page}");
    assert!(page.contains("No log data"), "{page}");
}

#[test]
fn report_fails_clearly_without_chromium_or_a_writable_out() {
    let lab = TestLab::quiet(BIN);
    let out = lab.run(&["report", "--out", "no/such/dir/r.html"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("writing the report to no/such/dir/r.html"),
        "{}",
        text(&out)
    );
    // No Chromium on PATH: the HTML is written, --png says what to install.
    let out = lab
        .command()
        .env("PATH", "/nonexistent")
        .args(["report", "--out", "r.html", "--png", "r.png"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("--png needs Chromium"), "{}", text(&out));
    assert!(lab.dir().join("r.html").exists());
}
