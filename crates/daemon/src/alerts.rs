//! `[alert]`: tell someone when the lab is falling down, because services
//! that restart themselves otherwise die in silence.
//!
//! [`Alerts`] watches what the daemon already has — every event (a
//! `CrashLoop` alerts at once) and, about once a second, each unit's state
//! and each link's lag — and raises three alerts: `crash_loop`, `down` (a
//! unit that was ready has not been for longer than `down_after`; once per
//! outage) and `lag` (a subscriber more than `lag_bytes` behind; once until
//! it catches up). An alert is a JSON payload handed to a command on stdin
//! and/or POSTed to a webhook, in a task of its own so the caller never
//! waits for it. At most one alert per (kind, unit) goes out per
//! `min_interval`; the ones held back are counted in the next one's
//! `"suppressed"`. Every delivery (and every suppression) is recorded as an
//! `EventKind::Alert` event on the lab's event channel. Events carry no
//! secrets, so neither do payloads.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use model::{Event, EventKind, Exit};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A webhook that has not answered by then counts as not delivered.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// What `[alert]` says.
#[derive(Debug, Clone)]
pub(crate) struct AlertOptions {
    /// argv of a command that gets the payload on stdin.
    pub command: Option<Vec<String>>,
    /// `http://HOST:PORT/PATH` (plain http) that gets the payload POSTed.
    pub webhook: Option<String>,
    /// A unit that was ready and has not been for this long is down.
    pub down_after: Duration,
    /// Replication lag above this many bytes alerts; `None`: no lag alerts.
    pub lag_bytes: Option<i64>,
    /// At most one alert per (kind, unit) in this long.
    pub min_interval: Duration,
    /// The lab's name, for the payload.
    pub lab: String,
    /// Where the command runs (the lab file's directory, so a relative path
    /// in it means what the lab file's author saw); `None`: the daemon's.
    pub workdir: Option<PathBuf>,
    /// A command still running after this long is killed (its whole process
    /// group) and the alert counts as not delivered.
    pub command_timeout: Duration,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            command: None,
            webhook: None,
            down_after: Duration::from_secs(10),
            lag_bytes: None,
            min_interval: Duration::from_secs(60),
            lab: String::new(),
            workdir: None,
            command_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    CrashLoop,
    Down,
    Lag,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::CrashLoop => "crash_loop",
            Kind::Down => "down",
            Kind::Lag => "lag",
        }
    }
}

/// Rate-limit state of one (kind, unit).
#[derive(Debug, Default)]
struct Limit {
    last_sent_ns: Option<i64>,
    suppressed: u32,
}

/// What `down` needs to remember about one unit.
#[derive(Debug, Default)]
struct Watch {
    /// Ready since it was last started on purpose: only then is not being
    /// ready an outage (a unit still coming up is the crash loop's business).
    was_ready: bool,
    /// When the current outage began, kept across down → starting → down
    /// flips until the unit is ready again.
    outage_since_ns: Option<i64>,
    alerted: bool,
}

/// What one observation (an event or a tick's state) says about a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Ready,
    NotReady,
    /// Stopped or exited on purpose: whatever comes next is a fresh start.
    Stopped,
}

/// The alerting state of one lab; see the module overview.
#[derive(Debug)]
pub(crate) struct Alerts {
    opts: Arc<AlertOptions>,
    events: mpsc::Sender<Event>,
    limits: HashMap<(Kind, String), Limit>,
    units: HashMap<String, Watch>,
    /// (replication, subscriber) links over the threshold, alerted already.
    lagging: HashSet<(String, String)>,
    /// Each unit's latest trouble (an exit, a failed probe…): the payload
    /// of its `down` alert.
    trouble: HashMap<String, Event>,
}

impl Alerts {
    pub(crate) fn new(opts: AlertOptions, events: mpsc::Sender<Event>) -> Alerts {
        Alerts {
            opts: Arc::new(opts),
            events,
            limits: HashMap::new(),
            units: HashMap::new(),
            lagging: HashSet::new(),
            trouble: HashMap::new(),
        }
    }

    /// Feed every event the lab emits (crash loops alert at once). Events
    /// also mark outages exactly, so one shorter than a tick is not missed:
    /// with `down_after` 0 an unexpected exit of a ready unit alerts at once.
    pub(crate) async fn on_event(&mut self, event: &Event) {
        let seen = match &event.kind {
            // Our own records come back through the same channel.
            EventKind::Alert { .. } => return,
            EventKind::CrashLoop { .. } => {
                self.trouble.insert(event.unit.clone(), event.clone());
                let message = event.to_string();
                self.raise(Kind::CrashLoop, &event.unit, message, Some(event), event.ts_ns);
                return;
            }
            EventKind::Ready => Seen::Ready,
            EventKind::Exited { expected: true, .. } => Seen::Stopped,
            EventKind::Exited { .. } | EventKind::NotReady => Seen::NotReady,
            EventKind::ProbeFailed { .. } | EventKind::GaveUp { .. } => {
                self.trouble.insert(event.unit.clone(), event.clone());
                return;
            }
            _ => return,
        };
        if seen == Seen::NotReady {
            self.trouble.insert(event.unit.clone(), event.clone());
        }
        self.observe(&event.unit, seen, event.ts_ns, event.ts_ns);
    }

    /// Feed the current state every second or so: `units` as (name, state as
    /// in `api::NodeStatus::state`, since_ns of that state) and `lags` as
    /// (replication, subscriber, lag_bytes).
    pub(crate) async fn on_tick(
        &mut self,
        now_ns: i64,
        units: &[(String, String, i64)],
        lags: &[(String, String, Option<i64>)],
    ) {
        for (name, state, since_ns) in units {
            let seen = match state.as_str() {
                "ready" => Seen::Ready,
                "down" | "failed" | "unready" | "starting" => Seen::NotReady,
                _ => Seen::Stopped,
            };
            self.observe(name, seen, *since_ns, now_ns);
        }
        let Some(threshold) = self.opts.lag_bytes else {
            return;
        };
        for (replication, subscriber, lag) in lags {
            // Unknown lag (a link being set up, a node down) changes nothing.
            let Some(lag) = *lag else { continue };
            let key = (replication.clone(), subscriber.clone());
            if lag <= threshold {
                self.lagging.remove(&key);
            } else if self.lagging.insert(key) {
                let message = format!(
                    "replication {replication}: {subscriber} is {lag} bytes behind (threshold {threshold})"
                );
                self.raise(Kind::Lag, subscriber, message, None, now_ns);
            }
        }
    }

    /// One observation of `unit`, in the state `seen` since `since_ns`, at
    /// `now_ns`: raises `down` once per outage of at least `down_after` —
    /// while it lasts, or when it ends if nobody looked meanwhile.
    fn observe(&mut self, unit: &str, seen: Seen, since_ns: i64, now_ns: i64) {
        let down_after_ns = self.opts.down_after.as_nanos() as i64;
        let watch = self.units.entry(unit.to_string()).or_default();
        let message = match seen {
            Seen::Stopped => {
                *watch = Watch::default();
                return;
            }
            Seen::Ready => {
                let Some(began) = watch.outage_since_ns else {
                    watch.was_ready = true;
                    return;
                };
                if since_ns < began {
                    return; // a view from before the outage, arriving late
                }
                let alerted = watch.alerted;
                *watch = Watch {
                    was_ready: true,
                    ..Watch::default()
                };
                if alerted || since_ns - began < down_after_ns {
                    return;
                }
                let secs = (since_ns - began) as f64 / 1e9;
                format!("{unit} was not ready for {secs:.1} s (ready again)")
            }
            Seen::NotReady if watch.was_ready => {
                let began = *watch.outage_since_ns.get_or_insert(since_ns);
                if watch.alerted || now_ns - began < down_after_ns {
                    return;
                }
                watch.alerted = true;
                match now_ns - began {
                    ns if ns < 100_000_000 => format!("{unit} is down"),
                    ns => format!("{unit} has not been ready for {:.1} s", ns as f64 / 1e9),
                }
            }
            Seen::NotReady => return,
        };
        let cause = self.trouble.get(unit).cloned();
        let message = match &cause {
            Some(cause) => {
                let what = cause.to_string();
                let what = what
                    .strip_prefix(&format!("{unit}: "))
                    .unwrap_or(&what)
                    .to_string();
                format!("{message} (last: {what})")
            }
            None => message,
        };
        self.raise(Kind::Down, unit, message, cause.as_ref(), now_ns);
    }

    /// Sends the alert (in a task of its own) unless the rate limit holds it
    /// back; records either outcome.
    fn raise(&mut self, kind: Kind, unit: &str, message: String, event: Option<&Event>, now_ns: i64) {
        let limit = self.limits.entry((kind, unit.to_string())).or_default();
        let interval_ns = self.opts.min_interval.as_nanos() as i64;
        if limit.last_sent_ns.is_some_and(|last| now_ns - last < interval_ns) {
            limit.suppressed += 1;
            let detail = format!(
                "suppressed: {} since the last one, at most one per {:?}",
                limit.suppressed, self.opts.min_interval
            );
            record(&self.events, unit, kind, "rate_limit", false, detail);
            return;
        }
        let suppressed = std::mem::take(&mut limit.suppressed);
        limit.last_sent_ns = Some(now_ns);
        let payload = json!({
            "alert": kind.name(),
            "unit": unit,
            "lab": self.opts.lab,
            "message": message,
            "event": event.map_or(Value::Null, |e| serde_json::to_value(e).unwrap_or(Value::Null)),
            "ts_ns": now_ns,
            "suppressed": suppressed,
        });
        tokio::spawn(deliver(
            self.opts.clone(),
            self.events.clone(),
            kind,
            unit.to_string(),
            payload.to_string(),
        ));
    }
}

/// Sends one `Alert` event without making the caller wait: the caller may be
/// the very loop that drains the channel.
fn record(
    events: &mpsc::Sender<Event>,
    unit: &str,
    kind: Kind,
    target: &str,
    delivered: bool,
    detail: String,
) {
    let event = Event::now(
        unit,
        EventKind::Alert {
            alert: kind.name().into(),
            target: target.into(),
            delivered,
            detail,
        },
    );
    let events = events.clone();
    tokio::spawn(async move {
        let _ = events.send(event).await;
    });
}

async fn deliver(
    opts: Arc<AlertOptions>,
    events: mpsc::Sender<Event>,
    kind: Kind,
    unit: String,
    payload: String,
) {
    let command = async {
        match &opts.command {
            Some(argv) => Some(run_command(&opts, argv, kind, &unit, &payload).await),
            None => None,
        }
    };
    let webhook = async {
        match &opts.webhook {
            Some(url) => Some(post(url, &payload).await),
            None => None,
        }
    };
    let (command, webhook) = tokio::join!(command, webhook);
    if command.is_none() && webhook.is_none() {
        let detail = "[alert] names neither a command nor a webhook".to_string();
        record(&events, &unit, kind, "none", false, detail);
    }
    for (target, outcome) in [("command", command), ("webhook", webhook)] {
        if let Some((delivered, detail)) = outcome {
            record(&events, &unit, kind, target, delivered, detail);
        }
    }
}

/// Runs the alert command with the payload on stdin; (exited 0, how it went).
async fn run_command(
    opts: &AlertOptions,
    argv: &[String],
    kind: Kind,
    unit: &str,
    payload: &str,
) -> (bool, String) {
    let Some((program, args)) = argv.split_first() else {
        return (false, "the alert command is empty".into());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("PRODHOME_ALERT", kind.name())
        .env("PRODHOME_UNIT", unit)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &opts.workdir {
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return (false, format!("cannot run {program}: {e}")),
    };
    let pid = child.id();
    let stdin = child.stdin.take();
    let stderr = child.stderr.take();
    let run = async {
        if let Some(mut stdin) = stdin {
            // A command need not read its input: a closed pipe is fine. The
            // newline makes `cat >> alerts.log` a file of JSON lines.
            let _ = stdin.write_all(format!("{payload}\n").as_bytes()).await;
        }
        let mut said = Vec::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(4096).read_to_end(&mut said).await;
        }
        (child.wait().await, said)
    };
    let outcome = tokio::time::timeout(opts.command_timeout, run).await;
    match outcome {
        Ok((Ok(status), said)) => {
            let exit = Exit {
                code: status.code(),
                signal: status.signal(),
            };
            let said = String::from_utf8_lossy(&said);
            match said.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(line) if !exit.success() => (false, format!("{program}: {exit}: {}", line.trim())),
                _ => (exit.success(), format!("{program}: {exit}")),
            }
        }
        Ok((Err(e), _)) => (false, format!("{program}: {e}")),
        Err(_) => {
            // Also whatever it started: it runs in a process group of its own.
            if let Some(pid) = pid {
                let group = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait().await;
            (
                false,
                format!(
                    "{program}: killed after {:?} without finishing",
                    opts.command_timeout
                ),
            )
        }
    }
}

/// POSTs the payload; (answered 2xx, how it went). The detail names only
/// host and port: a webhook's path may hold a token.
async fn post(url: &str, payload: &str) -> (bool, String) {
    let Some(rest) = url.strip_prefix("http://") else {
        return (false, "the webhook must be an http:// URL".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    match tokio::time::timeout(WEBHOOK_TIMEOUT, exchange(authority, path, payload)).await {
        Ok(Ok(code)) => ((200..300).contains(&code), format!("{authority}: HTTP {code}")),
        Ok(Err(e)) => (false, format!("{authority}: {e}")),
        Err(_) => (
            false,
            format!("{authority}: no answer within {WEBHOOK_TIMEOUT:?}"),
        ),
    }
}

/// One HTTP/1.1 request; the response's status code.
async fn exchange(authority: &str, path: &str, payload: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: prodhome\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or_default();
    match status.split_whitespace().collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/") => code
            .parse()
            .map_err(|_| std::io::Error::other(format!("bad HTTP status line {status:?}"))),
        _ => Err(std::io::Error::other("closed without an HTTP response")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

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
}
