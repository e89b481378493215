//! The InfluxDB sink: a real InfluxDB 1.x through the v1 API, the v2
//! request format against a recorded expectation, and a dead server.

use std::io::Read;
use std::time::Duration;

use model::{Event, EventKind, FieldValue, Point, Secret};
use store::{InfluxApi, InfluxOptions, SinkState, StoreOptions};
use testkit::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Server, poll};

/// influxd on free loopback ports with its data in a temp dir.
fn start_influxd(dir: &tempfile::TempDir) -> Server {
    let (http, rpc) = (free_port(), free_port());
    let root = dir.path().display();
    let config = format!(
        "reporting-enabled = false\n\
         bind-address = \"127.0.0.1:{rpc}\"\n\
         [meta]\n  dir = \"{root}/meta\"\n\
         [data]\n  dir = \"{root}/data\"\n  wal-dir = \"{root}/wal\"\n  query-log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n"
    );
    let file = dir.path().join("influxdb.conf");
    std::fs::write(&file, config).unwrap();
    Server::start(
        "/usr/bin/influxd",
        "influxdb",
        &["run".into(), "-config".into(), file.display().to_string()],
        &dir.path().join("influxd.log"),
        http,
    )
}

/// influxd started and answering `/ping`, with no database yet.
async fn ready_influxd(dir: &tempfile::TempDir) -> Server {
    let influxd = start_influxd(dir);
    let port = influxd.port;
    let http = reqwest::Client::new();
    poll(
        "influxd to answer /ping with 204",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            async move {
                let r = http
                    .get(format!("http://127.0.0.1:{port}/ping"))
                    .send()
                    .await
                    .ok()?;
                (r.status() == 204).then_some(())
            }
        },
    )
    .await;
    influxd
}

fn v1(port: u16, lab: Option<&str>, create_database: bool) -> InfluxOptions {
    InfluxOptions {
        url: format!("http://127.0.0.1:{port}"),
        api: InfluxApi::V1 { db: "lab".into() },
        batch: 50,
        buffer: 10_000,
        lab: lab.map(str::to_string),
        create_database,
    }
}

async fn influx_query(http: &reqwest::Client, port: u16, q: &str) -> serde_json::Value {
    let url = reqwest::Url::parse_with_params(
        &format!("http://127.0.0.1:{port}/query"),
        &[("db", "lab"), ("q", q)],
    )
    .unwrap();
    let response = http.get(url).send().await.unwrap();
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn points_and_events_written_through_the_v1_api_read_back_with_influxql() {
    let dir = tempfile::tempdir().unwrap();
    let influxd = start_influxd(&dir);
    let port = influxd.port;
    let http = reqwest::Client::new();
    poll(
        "influxd to answer /ping with 204",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            async move {
                let r = http
                    .get(format!("http://127.0.0.1:{port}/ping"))
                    .send()
                    .await
                    .ok()?;
                (r.status() == 204).then_some(())
            }
        },
    )
    .await;
    let url = reqwest::Url::parse_with_params(
        &format!("http://127.0.0.1:{port}/query"),
        &[("q", "CREATE DATABASE lab")],
    )
    .unwrap();
    let created = http.post(url).send().await.unwrap();
    assert!(created.status().is_success(), "{}", created.text().await.unwrap());

    let store = store::start(StoreOptions {
        influx: Some(InfluxOptions {
            url: format!("http://127.0.0.1:{port}"),
            api: InfluxApi::V1 { db: "lab".into() },
            batch: 50,
            buffer: 10_000,
            lab: None,
            create_database: false,
        }),
        ..Default::default()
    })
    .unwrap();
    let t0 = model::now_ns() - 60_000_000_000;
    let points: Vec<Point> = (0..120)
        .map(|i| {
            Point::new("locks", t0 + i * 1_000_000_000)
                .tag("node", "pub lisher")
                .tag("mode", "RowExclusiveLock")
                .int("count", i)
                .float("oldest_wait_s", 0.5)
                .field("note", FieldValue::Str("a \"quoted\" note".into()))
        })
        .collect();
    store.points().send(points);
    store.event(Event {
        ts_ns: t0,
        unit: "pub lisher".into(),
        kind: EventKind::Exited {
            exit: model::Exit {
                code: None,
                signal: Some(9),
            },
            expected: false,
        },
    });
    store.flush().await;
    let stats = store.stats();
    let influx = stats.sink("influx").unwrap();
    assert_eq!(
        (influx.written, influx.failed, influx.dropped),
        (121, 0, 0),
        "{stats:?}\n{}",
        influxd.log_text()
    );

    let result = influx_query(
        &http,
        port,
        "SELECT count(\"count\"), sum(\"count\"), last(\"note\") FROM locks WHERE node = 'pub lisher' AND mode = 'RowExclusiveLock'",
    )
    .await;
    let row = &result["results"][0]["series"][0]["values"][0];
    assert_eq!(row[1], 120, "{result}");
    assert_eq!(row[2], (0..120).sum::<i64>(), "{result}");
    assert_eq!(row[3], "a \"quoted\" note", "{result}");
    let events = influx_query(&http, port, "SELECT \"text\", kind FROM events").await;
    let row = &events["results"][0]["series"][0]["values"][0];
    assert_eq!(row[2], "exited", "{events}");
    assert!(row[1].as_str().unwrap().contains("SIGKILL"), "{events}");
}

/// What a v2 write must look like on the wire, recorded from the InfluxDB
/// 2.x API reference: path, query, token header, gzip body.
#[tokio::test]
async fn a_v2_write_has_the_path_query_token_and_gzip_body_the_api_expects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let recorded = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then exactly Content-Length bytes of body.
        let (head, body) = loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed mid-request");
            request.extend_from_slice(&buf[..n]);
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .expect("a content-length");
                while request.len() < end + 4 + length {
                    let n = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                break (head, request[end + 4..end + 4 + length].to_vec());
            }
        };
        socket
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        (head, body)
    });
    let store = store::start(StoreOptions {
        influx: Some(InfluxOptions {
            url: format!("http://127.0.0.1:{port}/"),
            api: InfluxApi::V2 {
                org: "home lab".into(),
                bucket: "prod&home".into(),
                token: Secret::new("s3cr3t-token"),
            },
            batch: 10,
            buffer: 100,
            lab: None,
            create_database: false,
        }),
        ..Default::default()
    })
    .unwrap();
    store.points().send(vec![
        Point::new("locks", 1_700_000_000_000_000_000)
            .tag("node", "publisher")
            .int("waiting", 2),
    ]);
    store.flush().await;
    let (head, body) = recorded.await.unwrap();
    let mut lines = head.lines();
    assert_eq!(
        lines.next().unwrap(),
        "POST /api/v2/write?org=home+lab&bucket=prod%26home&precision=ns HTTP/1.1"
    );
    let headers: Vec<String> = lines.map(|l| l.to_ascii_lowercase()).collect();
    for expected in [
        "authorization: token s3cr3t-token",
        "content-encoding: gzip",
        "content-type: text/plain; charset=utf-8",
    ] {
        assert!(
            headers.iter().any(|h| h == expected),
            "no `{expected}` in {headers:?}"
        );
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "locks,node=publisher waiting=2i 1700000000000000000\n");
    assert_eq!(store.stats().sink("influx").unwrap().written, 1);
}

#[tokio::test]
async fn a_dead_influxdb_never_blocks_producers_and_its_overflow_is_counted() {
    let dead = free_port(); // nothing listens here
    let dir = tempfile::tempdir().unwrap();
    let store = store::start(StoreOptions {
        embedded: Some(store::EmbeddedOptions {
            path: dir.path().join("metrics.db"),
            retention: Duration::from_secs(3600),
        }),
        influx: Some(InfluxOptions {
            url: format!("http://127.0.0.1:{dead}"),
            api: InfluxApi::V1 { db: "lab".into() },
            batch: 10,
            buffer: 50,
            lab: None,
            create_database: false,
        }),
        prometheus: false,
    })
    .unwrap();
    let sink = store.points();
    // Far more than the buffer holds, handed over without waiting.
    for round in 0..100 {
        let batch = (0..10)
            .map(|i| {
                Point::new("m", model::now_ns() + i)
                    .tag("node", "n")
                    .int("round", round)
            })
            .collect();
        sink.send(batch);
    }
    // The embedded sink, beside it, got everything.
    poll(
        "the embedded sink to write every point",
        Duration::from_secs(30),
        || {
            let stats = store.stats();
            async move { (stats.sink("embedded")?.written == 1000).then_some(()) }
        },
    )
    .await;
    let stats = store.stats();
    let influx = stats.sink("influx").unwrap();
    assert!(influx.dropped >= 900, "{stats:?}");
    assert_eq!(influx.written, 0);
    assert!(influx.queued <= 50, "{stats:?}");
    // The failed write says where and why.
    poll("the failed write to be reported", Duration::from_secs(30), || {
        let stats = store.stats();
        async move {
            let e = stats.sink("influx")?.last_error.clone()?;
            assert!(e.contains(&format!("127.0.0.1:{dead}")), "{e}");
            Some(())
        }
    })
    .await;
}

fn locks(n: i64) -> Vec<Point> {
    let t0 = model::now_ns() - 60_000_000_000;
    (0..n)
        .map(|i| {
            Point::new("locks", t0 + i * 1_000_000_000)
                .tag("node", "publisher")
                .int("waiting", i)
        })
        .collect()
}

#[tokio::test]
async fn a_missing_database_is_created_and_every_point_carries_the_lab_tag() {
    let dir = tempfile::tempdir().unwrap();
    let influxd = ready_influxd(&dir).await;
    let port = influxd.port;
    let checked = store::check_influx(&v1(port, None, true)).await.unwrap();
    assert_eq!(
        (checked.exists, checked.will_create),
        (false, true),
        "{checked:?}"
    );

    let store = store::start(StoreOptions {
        influx: Some(v1(port, Some("shop floor"), true)),
        ..Default::default()
    })
    .unwrap();
    store.points().send(locks(30));
    store.event(Event::now("publisher", EventKind::Ready));
    store.flush().await;
    let stats = store.stats();
    let influx = stats.sink("influx").unwrap();
    assert_eq!(
        (influx.written, influx.failed, influx.state),
        (31, 0, SinkState::Ok),
        "{stats:?}\n{}",
        influxd.log_text()
    );
    let http = reqwest::Client::new();
    for (what, q) in [
        (
            "points",
            "SELECT count(\"waiting\") FROM \"locks\" WHERE \"lab\" = 'shop floor'",
        ),
        (
            "events",
            "SELECT count(\"text\") FROM \"events\" WHERE \"lab\" = 'shop floor'",
        ),
    ] {
        let result = influx_query(&http, port, q).await;
        let want = if what == "points" { 30 } else { 1 };
        assert_eq!(
            result["results"][0]["series"][0]["values"][0][1], want,
            "{what}: {result}"
        );
    }
    let checked = store::check_influx(&v1(port, None, false)).await.unwrap();
    assert!(checked.exists, "{checked:?}");
}

#[tokio::test]
async fn with_create_database_off_the_sink_fails_once_then_recovers_when_the_database_appears() {
    let dir = tempfile::tempdir().unwrap();
    let influxd = ready_influxd(&dir).await;
    let port = influxd.port;
    let store = store::start(StoreOptions {
        influx: Some(v1(port, Some("shop"), false)),
        ..Default::default()
    })
    .unwrap();
    let mut changes = store.sink_changes();
    changes.mark_unchanged();
    store.points().send(locks(5));
    store.flush().await;
    store.points().send(locks(5));
    store.flush().await;
    let stats = store.stats();
    let influx = stats.sink("influx").unwrap().clone();
    assert_eq!(
        (influx.state, influx.failures, influx.failed, influx.written),
        (SinkState::Failing, 1, 10, 0),
        "{stats:?}"
    );
    let error = influx.last_error.unwrap();
    assert!(
        error.contains("database not found"),
        "InfluxDB's own words: {error}"
    );
    assert!(error.contains(&format!("127.0.0.1:{port}")), "where: {error}");
    assert!(changes.has_changed().unwrap(), "a watcher is woken");
    let checked = store::check_influx(&v1(port, None, false)).await.unwrap();
    assert_eq!((checked.exists, checked.will_create), (false, false));

    let url = reqwest::Url::parse_with_params(
        &format!("http://127.0.0.1:{port}/query"),
        &[("q", "CREATE DATABASE lab")],
    )
    .unwrap();
    assert!(
        reqwest::Client::new()
            .post(url)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    changes.mark_unchanged();
    store.points().send(locks(5));
    store.flush().await;
    let stats = store.stats();
    let influx = stats.sink("influx").unwrap();
    assert_eq!(
        (influx.state, influx.failures, influx.recoveries, influx.written),
        (SinkState::Ok, 1, 1, 5),
        "{stats:?}"
    );
    assert!(changes.has_changed().unwrap());
}

#[tokio::test]
async fn the_doctor_s_check_says_where_influxdb_is_not() {
    let dead = free_port();
    let e = store::check_influx(&v1(dead, None, true))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{dead}")) && e.contains("/ping"),
        "{e}"
    );
}
