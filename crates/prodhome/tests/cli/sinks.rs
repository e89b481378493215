//! Sinks from the user's side: an InfluxDB whose database is missing (and
//! may not be created) shows in `status`, in the events and in `doctor`,
//! and recovers when the database appears; the daemon's `/metrics` passes
//! `promtool check metrics`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::{Server, TestLab, free_port, http_get, http_post, poll};

use crate::{BIN, text};

const PROMTOOL: &str = "/usr/bin/promtool";

/// influxd on free loopback ports with its data in `dir`, answering /ping.
pub(crate) fn influxd(dir: &Path) -> Server {
    let (http, rpc) = (free_port(), free_port());
    let root = dir.display();
    let config = format!(
        "reporting-enabled = false\n\
         bind-address = \"127.0.0.1:{rpc}\"\n\
         [meta]\n  dir = \"{root}/meta\"\n\
         [data]\n  dir = \"{root}/data\"\n  wal-dir = \"{root}/wal\"\n  query-log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n"
    );
    let file = dir.join("influxdb.conf");
    std::fs::write(&file, config).unwrap();
    let server = Server::start(
        "/usr/bin/influxd",
        "influxdb",
        &["run".into(), "-config".into(), file.display().to_string()],
        &dir.join("influxd.log"),
        http,
    );
    poll("influxd to answer /ping", Duration::from_secs(30), || {
        http_get(&format!("http://127.0.0.1:{http}/ping")).filter(|(code, _)| *code == 204)
    });
    server
}

/// `POST /query?q=...` (InfluxDB refuses CREATE over GET); the status code.
fn influx_post(port: u16, query: &str) -> u16 {
    let q = query.replace(' ', "+");
    http_post(&format!("http://127.0.0.1:{port}/query?q={q}"), "").map_or(0, |(code, _)| code)
}

fn sink(status: &Value, name: &str) -> Option<Value> {
    status["sinks"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

fn events(api: &str, kind: &str) -> Vec<Value> {
    let (_, body) = http_get(&format!("{api}/api/events?since=0")).expect("events");
    let all: Vec<Value> = serde_json::from_str(&body).expect("events are JSON");
    all.into_iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn an_influx_database_that_may_not_be_created_fails_visibly_and_recovery_is_seen() {
    let lab = TestLab::new(BIN);
    let influx_dir = lab.dir().join("influx");
    std::fs::create_dir(&influx_dir).unwrap();
    let influx = influxd(&influx_dir);
    lab.write(
        "prodhome.toml",
        &format!(
            r#"
name = "sinkfail"
[postgres.publisher]
[sample]
interval = "200ms"
sinks = ["embedded", "influx"]
[sample.influx]
url = "http://127.0.0.1:{}"
db = "labdb"
create_database = false
"#,
            influx.port
        ),
    );
    lab.up();
    let failing = poll(
        "status to show the influx sink failing",
        Duration::from_secs(60),
        || {
            let s = sink(&lab.status(), "influx")?;
            (s["state"] == "failing").then_some(s)
        },
    );
    let error = failing["last_error"].as_str().unwrap();
    assert!(
        error.contains("database not found"),
        "InfluxDB's own words: {failing}"
    );
    assert_eq!(sink(&lab.status(), "embedded").unwrap()["state"], "ok");
    let api = lab.status()["api"].as_str().unwrap().to_string();
    // Writes go on failing; the event is raised once.
    let before = failing["failed"].as_u64().unwrap();
    poll("more failed writes", Duration::from_secs(30), || {
        (sink(&lab.status(), "influx")?["failed"].as_u64()? > before).then_some(())
    });
    let failed = events(&api, "sink_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["sink"], "influx");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("database not found")
    );

    let out = lab.run(&["status"]);
    let shown = text(&out);
    assert!(shown.contains("influx") && shown.contains("failing"), "{shown}");
    assert!(shown.contains("last error: database not found"), "{shown}");

    let doctor = lab.run(&["doctor"]);
    let said = text(&doctor);
    assert!(!doctor.status.success(), "doctor must fail:\n{said}");
    assert!(
        said.contains("FAIL influx sink: database \"labdb\" does not exist and create_database = false"),
        "{said}"
    );
    assert!(said.contains("FAIL sink influx is failing"), "{said}");

    assert_eq!(influx_post(influx.port, "CREATE DATABASE labdb"), 200);
    poll("the influx sink to write again", Duration::from_secs(60), || {
        (sink(&lab.status(), "influx")?["state"] == "ok").then_some(())
    });
    let recovered = poll("a sink_recovered event", Duration::from_secs(30), || {
        let found = events(&api, "sink_recovered");
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(events(&api, "sink_failed").len(), 1);
    let doctor = lab.run(&["doctor"]);
    assert!(doctor.status.success(), "{}", text(&doctor));
    let out = lab.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The seed lab's shape with hum and fast sampling, so that every kind of
/// series is there: locks, activity, database rates, replication from both
/// ends, process, sampler, hum, and the store's own counters.
const PROMETHEUS_LAB: &str = r#"
name = "promlint"
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
clients = 1
rate = 20
[sample]
interval = "200ms"
sinks = ["prometheus"]
"#;

#[test]
fn the_daemon_s_metrics_pass_promtool_check_metrics() {
    if !Path::new(PROMTOOL).exists() {
        testkit::skip(&format!(
            "{PROMTOOL} is missing (Debian's `prometheus` package; `bash .ci/run` installs it)"
        ));
        return;
    }
    let lab = TestLab::new(BIN)
        .lab(PROMETHEUS_LAB)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    let api = lab.status()["api"].as_str().unwrap().to_string();
    let wanted = [
        "prodhome_locks{",
        "prodhome_activity_sessions{",
        "prodhome_database_xact_commit_per_second{",
        "prodhome_replication_lag_bytes{",
        "prodhome_replication_heartbeat_age_seconds{",
        "prodhome_process_rss_bytes{",
        "prodhome_sampler_duration_seconds{",
        "prodhome_hum_latency_p99_seconds{",
        "prodhome_hum_transactions_total{",
        // The store reports on itself every 10 s.
        "prodhome_store_written_total{",
    ];
    let metrics = poll(
        "every kind of series in /metrics",
        Duration::from_secs(60),
        || {
            let (code, body) = http_get(&format!("{api}/metrics"))?;
            (code == 200 && wanted.iter().all(|w| body.contains(w))).then_some(body)
        },
    );
    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let findings = text(&out);
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool check metrics found:\n{findings}\n--- /metrics:\n{metrics}"
    );
    let out = lab.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
}
