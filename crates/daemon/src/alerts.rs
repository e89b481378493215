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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use model::{Event, EventKind};
use serde_json::{Value, json};
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
        .env("PRODHOME_UNIT", unit);
    if let Some(dir) = &opts.workdir {
        command.current_dir(dir);
    }
    // The newline makes `cat >> alerts.log` a file of JSON lines.
    let input = format!("{payload}\n");
    match supervisor::run_with_timeout(command, Some(input.as_bytes()), opts.command_timeout).await {
        Ok(done) => match done.last_stderr_line {
            Some(line) if !done.exit.success() => (false, format!("{program}: {}: {line}", done.exit)),
            _ => (done.exit.success(), format!("{program}: {}", done.exit)),
        },
        Err(supervisor::JobError::Spawn(e)) => (false, format!("cannot run {program}: {e}")),
        // Killed with whatever it started: it runs in a process group of its own.
        Err(supervisor::JobError::TimedOut(limit)) => (
            false,
            format!("{program}: killed after {limit:?} without finishing"),
        ),
    }
}

/// POSTs the payload; (answered 2xx, how it went). The detail names only
/// host and port: a webhook's path may hold a token.
async fn post(url: &str, payload: &str) -> (bool, String) {
    let Some(rest) = url.strip_prefix("http://") else {
        return (false, "the webhook must be an http:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let client = match webhook_client() {
        Ok(client) => client,
        Err(e) => return (false, format!("{authority}: {e}")),
    };
    let request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload.to_string())
        .send();
    match tokio::time::timeout(WEBHOOK_TIMEOUT, request).await {
        Ok(Ok(response)) => {
            let code = response.status();
            (code.is_success(), format!("{authority}: HTTP {}", code.as_u16()))
        }
        // The root cause, never reqwest's own message: that one has the URL.
        Ok(Err(e)) if e.is_connect() || e.is_builder() => {
            (false, format!("{authority}: {}", model::root_cause(&e)))
        }
        Ok(Err(e)) => (
            false,
            format!(
                "{authority}: closed without an HTTP response ({})",
                model::root_cause(&e)
            ),
        ),
        Err(_) => (
            false,
            format!("{authority}: no answer within {WEBHOOK_TIMEOUT:?}"),
        ),
    }
}

/// One client for every webhook: plain http, no proxy from the environment
/// (the old hand-written client connected directly, too).
fn webhook_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .user_agent("prodhome")
                .build()
                .map_err(|e| format!("could not build an HTTP client: {}", model::root_cause(&e)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests;
