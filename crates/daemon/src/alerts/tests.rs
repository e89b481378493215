use super::*;
use model::Exit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEC: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * SEC;
const WAIT: Duration = Duration::from_secs(30);

fn options() -> AlertOptions {
    AlertOptions {
        lab: "dispatch".into(),
        down_after: Duration::from_secs(1),
        min_interval: Duration::from_secs(60),
        ..AlertOptions::default()
    }
}

fn crash_loop(unit: &str, ts_ns: i64) -> Event {
    Event {
        ts_ns,
        unit: unit.into(),
        kind: EventKind::CrashLoop { restarts: 5 },
    }
}

/// The next `Alert` event recorded: (unit, alert, target, delivered, detail).
async fn next_record(rx: &mut mpsc::Receiver<Event>) -> (String, String, String, bool, String) {
    loop {
        let event = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an alert record")
            .expect("open");
        if let EventKind::Alert {
            alert,
            target,
            delivered,
            detail,
        } = event.kind
        {
            return (event.unit, alert, target, delivered, detail);
        }
    }
}

/// The last alert sent for (kind, unit), read from the rate limiter,
/// which `raise` updates before it returns.
fn last_sent(alerts: &Alerts, kind: Kind, unit: &str) -> Option<i64> {
    alerts.limits.get(&(kind, unit.to_string()))?.last_sent_ns
}

/// A real HTTP listener that answers 200 and hands on each request's
/// head and JSON body.
struct Hook {
    url: String,
    requests: mpsc::Receiver<(String, Value)>,
}

impl Hook {
    async fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, requests) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (head, body) = read_request(&mut stream).await;
                let reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = tx
                    .send((head, serde_json::from_str(&body).expect("a JSON body")))
                    .await;
            }
        });
        Hook { url, requests }
    }

    async fn next(&mut self) -> Value {
        let (head, body) = tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("a POST")
            .unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        body
    }
}

async fn read_request(stream: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "request cut short");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .expect("content-length")
        .parse()
        .unwrap();
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "body cut short");
        data.extend_from_slice(&buf[..n]);
    }
    (head, String::from_utf8_lossy(&data[head_end..]).into_owned())
}

/// A directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("prodhome-alerts-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_crash_loop_alerts_once_with_its_event() {
    let mut hook = Hook::start().await;
    let (tx, mut rx) = mpsc::channel(16);
    let mut alerts = Alerts::new(
        AlertOptions {
            webhook: Some(hook.url.clone()),
            ..options()
        },
        tx,
    );
    alerts
        .on_event(&Event::now("dispatcher", EventKind::Started { pid: 42 }))
        .await;
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    let body = hook.next().await;
    assert_eq!(body["alert"], "crash_loop");
    assert_eq!(body["unit"], "dispatcher");
    assert_eq!(body["lab"], "dispatch");
    assert_eq!(body["event"]["kind"], "crash_loop");
    assert_eq!(body["event"]["restarts"], 5);
    assert_eq!(body["suppressed"], 0);
    assert_eq!(body["ts_ns"], T0);
    assert!(body["message"].as_str().unwrap().contains("crash loop"), "{body}");
    let record = next_record(&mut rx).await;
    assert_eq!(record.0, "dispatcher");
    assert_eq!(
        (record.1.as_str(), record.2.as_str(), record.3),
        ("crash_loop", "webhook", true),
        "{record:?}"
    );
    // Other events raise nothing: the next request is the next crash loop.
    alerts.on_event(&Event::now("dispatcher", EventKind::Ready)).await;
    alerts.on_event(&crash_loop("worker", T0)).await;
    assert_eq!(hook.next().await["unit"], "worker");
}

#[tokio::test]
async fn the_command_gets_the_payload_on_stdin_and_the_kind_in_its_env() {
    let dir = Dir::new("command");
    let script = r#"cat > alert.json; printf '%s %s' "$PRODHOME_ALERT" "$PRODHOME_UNIT" > alert.env"#;
    let opts = AlertOptions {
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        workdir: Some(dir.0.clone()),
        ..options()
    };
    let (tx, mut rx) = mpsc::channel(16);
    let mut alerts = Alerts::new(opts, tx);
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    let record = next_record(&mut rx).await;
    assert_eq!((record.2.as_str(), record.3), ("command", true), "{record:?}");
    assert_eq!(record.4, "sh: exit code 0");
    let text = std::fs::read_to_string(dir.0.join("alert.json")).unwrap();
    assert!(text.ends_with("}\n"), "one JSON line: {text:?}");
    let payload: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(payload["alert"], "crash_loop");
    assert_eq!(payload["event"]["unit"], "dispatcher");
    assert_eq!(
        std::fs::read_to_string(dir.0.join("alert.env")).unwrap(),
        "crash_loop dispatcher"
    );
}

#[tokio::test]
async fn a_failing_or_hanging_command_is_recorded_as_not_delivered() {
    let (tx, mut rx) = mpsc::channel(16);
    let failing = vec![
        "sh".into(),
        "-c".into(),
        "echo no route to pager >&2; exit 3".into(),
    ];
    let mut alerts = Alerts::new(
        AlertOptions {
            command: Some(failing),
            ..options()
        },
        tx.clone(),
    );
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    let record = next_record(&mut rx).await;
    assert_eq!(record.4, "sh: exit code 3: no route to pager");
    assert!(!record.3);
    let hanging = AlertOptions {
        command: Some(vec!["sleep".into(), "30".into()]),
        command_timeout: Duration::from_millis(200),
        ..options()
    };
    let mut alerts = Alerts::new(hanging, tx);
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    let record = next_record(&mut rx).await;
    assert!(!record.3 && record.4.contains("killed after"), "{record:?}");
}

#[tokio::test]
async fn down_fires_after_the_threshold_once_per_outage() {
    let mut hook = Hook::start().await;
    let (tx, mut rx) = mpsc::channel(64);
    let opts = AlertOptions {
        webhook: Some(hook.url.clone()),
        min_interval: Duration::from_secs(1),
        ..options()
    };
    let mut alerts = Alerts::new(opts, tx);
    let state = |name: &str, state: &str, since: i64| vec![(name.to_string(), state.to_string(), since)];
    // Never ready yet: still starting is no outage.
    alerts
        .on_tick(T0 + 5 * SEC, &state("publisher", "starting", T0), &[])
        .await;
    alerts
        .on_tick(T0 + 6 * SEC, &state("publisher", "ready", T0 + 5 * SEC), &[])
        .await;
    let exited = Event {
        ts_ns: T0 + 10 * SEC,
        unit: "publisher".into(),
        kind: EventKind::Exited {
            exit: Exit {
                code: None,
                signal: Some(9),
            },
            expected: false,
        },
    };
    alerts.on_event(&exited).await;
    let down = T0 + 10 * SEC;
    alerts
        .on_tick(down + SEC / 2, &state("publisher", "down", down), &[])
        .await;
    assert_eq!(
        last_sent(&alerts, Kind::Down, "publisher"),
        None,
        "not before down_after"
    );
    // down → starting keeps the outage's start.
    alerts
        .on_tick(
            down + 3 * SEC / 2,
            &state("publisher", "starting", down + SEC),
            &[],
        )
        .await;
    assert_eq!(
        last_sent(&alerts, Kind::Down, "publisher"),
        Some(down + 3 * SEC / 2)
    );
    let body = hook.next().await;
    assert_eq!(body["alert"], "down");
    assert_eq!(body["event"]["kind"], "exited", "the unit's last event: {body}");
    assert_eq!(
        body["message"],
        "publisher has not been ready for 1.5 s (last: killed by signal 9 (SIGKILL) (unexpected))"
    );
    assert!(next_record(&mut rx).await.3);
    // Once per outage, however long it lasts.
    alerts
        .on_tick(down + 9 * SEC, &state("publisher", "failed", down + 8 * SEC), &[])
        .await;
    assert_eq!(
        last_sent(&alerts, Kind::Down, "publisher"),
        Some(down + 3 * SEC / 2)
    );
    // Ready again: the next outage alerts again.
    alerts
        .on_tick(
            down + 10 * SEC,
            &state("publisher", "ready", down + 10 * SEC),
            &[],
        )
        .await;
    alerts
        .on_tick(
            down + 20 * SEC,
            &state("publisher", "unready", down + 15 * SEC),
            &[],
        )
        .await;
    assert_eq!(last_sent(&alerts, Kind::Down, "publisher"), Some(down + 20 * SEC));
    assert_eq!(hook.next().await["alert"], "down");
    // Stopped on purpose, then slow to start: no outage.
    alerts
        .on_tick(down + 30 * SEC, &state("worker", "ready", down), &[])
        .await;
    alerts
        .on_tick(down + 31 * SEC, &state("worker", "stopped", down + 30 * SEC), &[])
        .await;
    alerts
        .on_tick(
            down + 40 * SEC,
            &state("worker", "starting", down + 32 * SEC),
            &[],
        )
        .await;
    assert_eq!(last_sent(&alerts, Kind::Down, "worker"), None);
}

fn exited(unit: &str, ts_ns: i64) -> Event {
    let exit = Exit {
        code: None,
        signal: Some(9),
    };
    Event {
        ts_ns,
        unit: unit.into(),
        kind: EventKind::Exited {
            exit,
            expected: false,
        },
    }
}

fn ready(unit: &str, ts_ns: i64) -> Event {
    Event {
        ts_ns,
        unit: unit.into(),
        kind: EventKind::Ready,
    }
}

#[tokio::test]
async fn an_outage_between_two_ticks_is_not_missed() {
    let (tx, _rx) = mpsc::channel(64);
    let opts = AlertOptions {
        min_interval: Duration::ZERO,
        ..options()
    };
    let mut alerts = Alerts::new(opts, tx.clone());
    alerts.on_event(&ready("dispatcher", T0)).await;
    // Back within down_after: no alert.
    alerts.on_event(&exited("dispatcher", T0 + SEC)).await;
    alerts.on_event(&ready("dispatcher", T0 + SEC + SEC / 3)).await;
    assert_eq!(last_sent(&alerts, Kind::Down, "dispatcher"), None);
    // Longer than down_after, seen only by its events: alerts on
    // recovery. A status view from before the exit, arriving late
    // meanwhile, does not end the outage.
    alerts.on_event(&exited("dispatcher", T0 + 5 * SEC)).await;
    let stale = [("dispatcher".to_string(), "ready".to_string(), T0 + 2 * SEC)];
    alerts.on_tick(T0 + 11 * SEC / 2, &stale, &[]).await;
    alerts.on_event(&ready("dispatcher", T0 + 13 * SEC / 2)).await;
    assert_eq!(
        last_sent(&alerts, Kind::Down, "dispatcher"),
        Some(T0 + 13 * SEC / 2)
    );
    // down_after 0: an unexpected exit of a ready unit alerts at once.
    let mut alerts = Alerts::new(
        AlertOptions {
            down_after: Duration::ZERO,
            ..options()
        },
        tx,
    );
    alerts.on_event(&ready("dispatcher", T0)).await;
    alerts.on_event(&exited("dispatcher", T0 + SEC)).await;
    assert_eq!(last_sent(&alerts, Kind::Down, "dispatcher"), Some(T0 + SEC));
}

#[tokio::test]
async fn lag_over_the_threshold_alerts_once_until_it_falls_below() {
    let mut hook = Hook::start().await;
    let (tx, _rx) = mpsc::channel(64);
    let opts = AlertOptions {
        webhook: Some(hook.url.clone()),
        lag_bytes: Some(1000),
        min_interval: Duration::from_secs(1),
        ..options()
    };
    let mut alerts = Alerts::new(opts, tx);
    let lag = |bytes: Option<i64>| vec![("books".to_string(), "subscriber1".to_string(), bytes)];
    alerts.on_tick(T0, &[], &lag(Some(500))).await;
    assert_eq!(last_sent(&alerts, Kind::Lag, "subscriber1"), None);
    alerts.on_tick(T0 + SEC, &[], &lag(Some(2000))).await;
    let body = hook.next().await;
    assert_eq!(
        (body["alert"].as_str(), body["unit"].as_str()),
        (Some("lag"), Some("subscriber1"))
    );
    assert!(body["message"].as_str().unwrap().contains("books"), "{body}");
    alerts.on_tick(T0 + 5 * SEC, &[], &lag(Some(3000))).await;
    alerts.on_tick(T0 + 6 * SEC, &[], &lag(None)).await;
    alerts.on_tick(T0 + 7 * SEC, &[], &lag(Some(4000))).await;
    assert_eq!(
        last_sent(&alerts, Kind::Lag, "subscriber1"),
        Some(T0 + SEC),
        "once while over"
    );
    alerts.on_tick(T0 + 8 * SEC, &[], &lag(Some(10))).await;
    alerts.on_tick(T0 + 9 * SEC, &[], &lag(Some(5000))).await;
    assert_eq!(last_sent(&alerts, Kind::Lag, "subscriber1"), Some(T0 + 9 * SEC));
    assert_eq!(hook.next().await["alert"], "lag");
}

#[tokio::test]
async fn the_rate_limit_suppresses_and_counts() {
    let mut hook = Hook::start().await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut alerts = Alerts::new(
        AlertOptions {
            webhook: Some(hook.url.clone()),
            ..options()
        },
        tx,
    );
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    assert_eq!(hook.next().await["suppressed"], 0);
    alerts.on_event(&crash_loop("dispatcher", T0 + SEC)).await;
    alerts.on_event(&crash_loop("dispatcher", T0 + 2 * SEC)).await;
    let mut records = Vec::new();
    for _ in 0..3 {
        records.push(next_record(&mut rx).await);
    }
    let held: Vec<_> = records.iter().filter(|r| r.2 == "rate_limit").collect();
    assert_eq!(held.len(), 2, "{records:?}");
    assert!(held.iter().all(|r| !r.3));
    assert!(held.iter().any(|r| r.4.starts_with("suppressed: 2 ")), "{held:?}");
    // A minute after the first: delivered, with the count.
    alerts.on_event(&crash_loop("dispatcher", T0 + 61 * SEC)).await;
    let body = hook.next().await;
    assert_eq!(body["suppressed"], 2);
    assert_eq!(body["ts_ns"], T0 + 61 * SEC);
}

#[tokio::test]
async fn a_dead_webhook_is_recorded_as_not_delivered() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let (tx, mut rx) = mpsc::channel(16);
    let url = format!("http://127.0.0.1:{port}/hook?token=abc");
    let mut alerts = Alerts::new(
        AlertOptions {
            webhook: Some(url),
            ..options()
        },
        tx,
    );
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    let record = next_record(&mut rx).await;
    assert_eq!((record.2.as_str(), record.3), ("webhook", false), "{record:?}");
    assert!(record.4.starts_with(&format!("127.0.0.1:{port}: ")), "{record:?}");
    assert!(
        !record.4.contains("token"),
        "the URL's path stays out: {record:?}"
    );
}

#[tokio::test]
async fn a_silent_webhook_does_not_block_the_caller() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::channel(16);
    let mut alerts = Alerts::new(
        AlertOptions {
            webhook: Some(url),
            ..options()
        },
        tx,
    );
    // The listener has not answered yet, so delivery cannot have finished.
    alerts.on_event(&crash_loop("dispatcher", T0)).await;
    assert!(rx.try_recv().is_err(), "on_event waited for the delivery");
    let (mut stream, _) = listener.accept().await.unwrap();
    let (_, body) = read_request(&mut stream).await;
    assert!(body.contains("crash_loop"), "{body}");
    drop(stream);
    let record = next_record(&mut rx).await;
    assert!(
        !record.3 && record.4.contains("without an HTTP response"),
        "{record:?}"
    );
}
