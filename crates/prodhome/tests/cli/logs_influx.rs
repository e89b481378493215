//! The log reader's series and the services' line counts go to InfluxDB
//! too, like the sampler's: a division by zero on the node and a service's
//! JSON lines, queried back from a real influxd with InfluxQL.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, http_get, poll};

use crate::BIN;
use crate::sinks::influxd;

/// The single value of an InfluxQL query's first series, or `None`.
fn influx_value(port: u16, query: &str) -> Option<f64> {
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (code, body) = http_get(&format!("http://127.0.0.1:{port}/query?db=logdb&q={q}"))?;
    let answer: Value = serde_json::from_str(&body).ok()?;
    let value = &answer["results"][0]["series"][0]["values"][0][1];
    (code == 200).then(|| value.as_f64()).flatten()
}

#[test]
fn log_series_and_service_line_counts_reach_influxdb() {
    let lab = TestLab::new(BIN);
    let dir = lab.dir().join("influx");
    std::fs::create_dir(&dir).unwrap();
    let influx = influxd(&dir);
    lab.write(
        "prodhome.toml",
        &format!(
            r#"
name = "loginflux"
[postgres.db]
[sample]
interval = "200ms"
sinks = ["embedded", "influx"]
[sample.influx]
url = "http://127.0.0.1:{}"
db = "logdb"
[service.api]
command = ["sh", "-c", '''printf '%s\n' '{{"level":"warn","msg":"a"}}' '{{"level":"Warning","msg":"b"}}' '{{"level":"info"}}'; exec sleep 3600''']
"#,
            influx.port
        ),
    );
    lab.up();
    let out = lab.run(&["psql", "db", "-Atc", "SELECT 1/0"]);
    assert!(!out.status.success());
    let port = influx.port;
    poll(
        "the log's and the service's counts in InfluxDB",
        Duration::from_secs(60),
        || {
            let errors = influx_value(
                port,
                r#"SELECT sum("count") FROM "pg_log" WHERE "lab" = 'loginflux' AND "node" = 'db' AND "sqlstate" = '22012'"#,
            )?;
            let warns = influx_value(
                port,
                r#"SELECT sum("count") FROM "service_log_lines" WHERE "lab" = 'loginflux' AND "service" = 'api' AND "level" = 'warn'"#,
            )?;
            (errors == 1.0 && warns == 2.0).then_some(())
        },
    );
}
