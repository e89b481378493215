//! The resolved lab as one typed document: what `check --json` prints and
//! what the text rendering reads. Field names are a contract; add fields,
//! do not rename them. Nothing secret goes in: secrets are names with
//! `"***"`, influx tokens the name of their variable, passwords in URLs and
//! sensitive-looking literal env values `***`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use daemon::StateDir;
use lab::{DependsOn, HumWorkload, InfluxPlan, Plan, ProbeCheckPlan, ProbePlan, RestartPlan, Tables};
use serde::Serialize;

use super::Checked;

pub(crate) const REDACTED: &str = "***";

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) valid: bool,
    /// The lab file checked; `None` for the built-in seed lab.
    pub(crate) file: Option<String>,
    pub(crate) errors: Vec<ErrorOut>,
    /// The resolved lab, when valid.
    pub(crate) lab: Option<LabOut>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorOut {
    pub(crate) file: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct LabOut {
    pub(crate) name: String,
    pub(crate) builtin_seed: bool,
    pub(crate) postgres_version: u32,
    pub(crate) run_as: Option<String>,
    pub(crate) state_dir: String,
    pub(crate) seed: u64,
    pub(crate) api_port: PortOut,
    pub(crate) nodes: Vec<NodeOut>,
    pub(crate) replications: Vec<ReplicationOut>,
    pub(crate) start_order: StartOrder,
    pub(crate) services: Vec<ServiceOut>,
    pub(crate) hum: Option<HumOut>,
    pub(crate) sample: SampleOut,
    pub(crate) chaos: Vec<ChaosOut>,
    pub(crate) alert: Option<AlertOut>,
    pub(crate) secrets: Vec<SecretOut>,
}

/// `fixed` (in the lab file), `kept` (chosen by an earlier `up`, in
/// ports.json) or `auto` (chosen at `up`; `port` is null).
#[derive(Debug, Serialize)]
pub(crate) struct PortOut {
    pub(crate) mode: &'static str,
    pub(crate) port: Option<u16>,
}

#[derive(Debug, Serialize)]
pub(crate) struct NodeOut {
    pub(crate) name: String,
    pub(crate) port: PortOut,
    /// (name, value as written to postgresql.conf), in file order.
    pub(crate) settings: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReplicationOut {
    pub(crate) name: String,
    pub(crate) publisher: String,
    pub(crate) subscribers: Vec<String>,
    /// `"all"` or the list, as in the lab file.
    pub(crate) tables: TablesOut,
    pub(crate) schema: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum TablesOut {
    All(&'static str),
    List(Vec<String>),
}

/// Nodes start first, then replication is set up, then services start
/// in waves: each wave once the ones before it met their conditions.
#[derive(Debug, Serialize)]
pub(crate) struct StartOrder {
    pub(crate) nodes: Vec<String>,
    pub(crate) services: Vec<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ServiceOut {
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    pub(crate) workdir: String,
    /// "native", "image REF" or "packed" (`container = true`).
    pub(crate) runs: String,
    /// Values as written: `${...}` references are resolved only by `up`.
    pub(crate) env: Vec<(String, String)>,
    /// (node or service, "started" | "ready" | "healthy").
    pub(crate) depends_on: Vec<(String, &'static str)>,
    pub(crate) ready: Option<String>,
    pub(crate) live: Option<String>,
    pub(crate) restart: &'static str,
    pub(crate) max_restarts: u32,
    pub(crate) stop_signal: String,
    pub(crate) stop_timeout: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct HumOut {
    pub(crate) node: String,
    /// `tpcb`, `books`, or the script's path.
    pub(crate) workload: String,
    pub(crate) clients: u32,
    /// Transactions per second, or `"max"`.
    pub(crate) rate: RateOut,
    pub(crate) scale: u32,
    pub(crate) read_from: Vec<String>,
    pub(crate) seed: u64,
    pub(crate) long_transactions: f64,
    pub(crate) disconnects: f64,
    pub(crate) spikes: bool,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum RateOut {
    PerSecond(f64),
    Max(&'static str),
}

#[derive(Debug, Serialize)]
pub(crate) struct SampleOut {
    pub(crate) interval: String,
    pub(crate) retention: String,
    pub(crate) sinks: Vec<&'static str>,
    pub(crate) influx: Option<InfluxOut>,
    pub(crate) queries: Vec<QueryOut>,
}

#[derive(Debug, Serialize)]
pub(crate) struct InfluxOut {
    pub(crate) version: u8,
    pub(crate) url: String,
    pub(crate) db: Option<String>,
    /// v1: whether the sink creates its database when it is missing.
    pub(crate) create_database: Option<bool>,
    pub(crate) org: Option<String>,
    pub(crate) bucket: Option<String>,
    /// The variable `up` reads the token from; its value is never read here.
    pub(crate) token_env: Option<String>,
    pub(crate) token: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct QueryOut {
    pub(crate) name: String,
    pub(crate) nodes: Vec<String>,
    pub(crate) sql: String,
    pub(crate) tags: Vec<String>,
    pub(crate) fields: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChaosOut {
    pub(crate) fault: String,
    pub(crate) targets: Vec<String>,
    #[serde(rename = "for")]
    pub(crate) duration: String,
    pub(crate) every: String,
    /// What the fault does, e.g. `delay 200ms, jitter 10ms` (empty for
    /// faults without parameters).
    pub(crate) params: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct AlertOut {
    pub(crate) command: Option<Vec<String>>,
    pub(crate) webhook: Option<String>,
    pub(crate) down_after: String,
    pub(crate) lag_bytes: Option<i64>,
    pub(crate) min_interval: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct SecretOut {
    pub(crate) name: String,
    pub(crate) value: &'static str,
}

impl Report {
    pub(crate) fn new(checked: &Checked, state: Option<&StateDir>, kept: &BTreeMap<String, u16>) -> Report {
        let errors: Vec<ErrorOut> = checked.errors.iter().map(error_out).collect();
        let lab = match (&checked.plan, state) {
            (Some(plan), Some(state)) if errors.is_empty() => Some(lab_out(plan, checked.seed, state, kept)),
            _ => None,
        };
        let file = checked.file.as_ref().map(|f| f.display().to_string());
        Report {
            valid: lab.is_some(),
            file,
            errors,
            lab,
        }
    }
}

fn error_out(error: &lab::LabError) -> ErrorOut {
    let at = error.location.as_ref();
    ErrorOut {
        file: at.map(|l| l.file.display().to_string()),
        line: at.map(|l| l.line),
        column: at.map(|l| l.column),
        message: error.message.clone(),
        help: error.help.clone(),
    }
}

fn lab_out(plan: &Plan, seed: bool, state: &StateDir, kept: &BTreeMap<String, u16>) -> LabOut {
    let nodes = plan
        .nodes
        .iter()
        .map(|n| NodeOut {
            name: n.name.clone(),
            port: port_out(n.port, kept.get(&n.name).copied()),
            settings: n.settings.clone(),
        })
        .collect();
    LabOut {
        name: plan.name.clone(),
        builtin_seed: seed,
        postgres_version: plan.postgres_version,
        run_as: plan.run_as.clone(),
        state_dir: state.root().display().to_string(),
        seed: plan.seed,
        api_port: port_out(plan.api_port, None),
        nodes,
        replications: plan
            .replications
            .iter()
            .map(|r| replication_out(plan, r))
            .collect(),
        start_order: start_order(plan),
        services: plan.services.iter().map(|s| service_out(plan, s)).collect(),
        hum: plan.hum.as_ref().map(|h| hum_out(plan, h)),
        sample: sample_out(&plan.sample),
        chaos: plan.chaos.iter().map(chaos_out).collect(),
        alert: plan.alert.as_ref().map(|a| AlertOut {
            command: a.command.clone(),
            webhook: a.webhook.as_deref().map(redact_url),
            down_after: duration(a.down_after),
            lag_bytes: a.lag_bytes,
            min_interval: duration(a.min_interval),
        }),
        secrets: plan
            .secrets
            .iter()
            .map(|s| SecretOut {
                name: s.name.clone(),
                value: REDACTED,
            })
            .collect(),
    }
}

fn port_out(fixed: Option<u16>, kept: Option<u16>) -> PortOut {
    match (fixed, kept) {
        (Some(port), _) => PortOut {
            mode: "fixed",
            port: Some(port),
        },
        (None, Some(port)) => PortOut {
            mode: "kept",
            port: Some(port),
        },
        (None, None) => PortOut {
            mode: "auto",
            port: None,
        },
    }
}

fn replication_out(plan: &Plan, r: &lab::ReplicationPlan) -> ReplicationOut {
    ReplicationOut {
        name: r.name.clone(),
        publisher: r.publisher.clone(),
        subscribers: r.subscribers.clone(),
        tables: match &r.tables {
            Tables::All => TablesOut::All("all"),
            Tables::List(list) => TablesOut::List(list.clone()),
        },
        schema: r.schema.as_ref().map(|s| relative(plan, &s.path)),
    }
}

/// Paths beside the lab file read as they were written.
fn relative(plan: &Plan, path: &Path) -> String {
    match path.strip_prefix(&plan.dir) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_string(),
        Ok(rest) => rest.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The daemon's order: every node, then services in `depends_on` waves
/// (supervisor's rule; a dependency on a node is met before any wave).
fn start_order(plan: &Plan) -> StartOrder {
    let graph: Vec<(String, Vec<(String, supervisor::Condition)>)> = plan
        .services
        .iter()
        .map(|s| {
            let deps = s
                .depends_on
                .iter()
                .filter(|(d, _)| plan.services.iter().any(|o| &o.name == d))
                .map(|(d, _)| (d.clone(), supervisor::Condition::Started))
                .collect();
            (s.name.clone(), deps)
        })
        .collect();
    // lab refused cycles and unknown names already, so this cannot fail;
    // were it to, one wave in file order is still a true listing.
    let services = supervisor::start_order(&graph)
        .unwrap_or_else(|_| vec![plan.services.iter().map(|s| s.name.clone()).collect()]);
    StartOrder {
        nodes: plan.nodes.iter().map(|n| n.name.clone()).collect(),
        services: services.into_iter().filter(|w| !w.is_empty()).collect(),
    }
}

fn service_out(plan: &Plan, s: &lab::ServicePlan) -> ServiceOut {
    ServiceOut {
        name: s.name.clone(),
        command: s.command.clone(),
        workdir: relative(plan, &s.workdir),
        runs: match &s.run {
            lab::ServiceRun::Native => "native".into(),
            lab::ServiceRun::Image { reference, .. } => format!("image {reference}"),
            lab::ServiceRun::Packed { .. } => "packed".into(),
        },
        env: s.env.iter().map(|(k, v)| (k.clone(), env_value(k, v))).collect(),
        depends_on: s
            .depends_on
            .iter()
            .map(|(d, c)| (d.clone(), condition(*c)))
            .collect(),
        ready: s.ready.as_ref().map(probe),
        live: s.live.as_ref().map(probe),
        restart: match s.restart {
            RestartPlan::No => "no",
            RestartPlan::OnFailure => "on-failure",
            RestartPlan::Always => "always",
        },
        max_restarts: s.max_restarts,
        stop_signal: s.stop_signal.clone(),
        stop_timeout: duration(s.stop_timeout),
    }
}

fn condition(c: DependsOn) -> &'static str {
    match c {
        DependsOn::Started => "started",
        DependsOn::Ready => "ready",
        DependsOn::Healthy => "healthy",
    }
}

/// A literal value under a name that says it is secret is shown as `***`;
/// references (`${secret.x}`) are names, not values, and stay.
fn env_value(key: &str, value: &str) -> String {
    let key = key.to_ascii_uppercase();
    let sensitive = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"]
        .iter()
        .any(|w| key.contains(w));
    let reference = value.starts_with("${") && value.ends_with('}') && value.matches("${").count() == 1;
    if sensitive && !reference && !value.is_empty() {
        REDACTED.to_string()
    } else {
        redact_url(value)
    }
}

/// `scheme://user:password@host` keeps the user and hides the password.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:{REDACTED}@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

fn probe(p: &ProbePlan) -> String {
    let check = match &p.check {
        ProbeCheckPlan::Tcp(port) => format!("tcp {port}"),
        ProbeCheckPlan::Http(url) => format!("http {}", redact_url(url)),
        ProbeCheckPlan::Exec(argv) => format!("exec {}", argv.join(" ")),
    };
    format!(
        "{check} every {}, timeout {}, {} in a row",
        duration(p.interval),
        duration(p.timeout),
        p.threshold
    )
}

fn hum_out(plan: &Plan, h: &lab::HumPlan) -> HumOut {
    HumOut {
        node: h.node.clone(),
        workload: match &h.workload {
            HumWorkload::Tpcb => "tpcb".to_string(),
            HumWorkload::Books => "books".to_string(),
            HumWorkload::Script { path, .. } => relative(plan, path),
        },
        clients: h.clients,
        rate: h.rate.map_or(RateOut::Max("max"), RateOut::PerSecond),
        scale: h.scale,
        read_from: h.read_from.clone(),
        seed: h.seed,
        long_transactions: h.long_transactions,
        disconnects: h.disconnects,
        spikes: h.spikes,
    }
}

fn sample_out(s: &lab::SamplePlan) -> SampleOut {
    let sinks = [
        (s.embedded, "embedded"),
        (s.influx.is_some(), "influx"),
        (s.prometheus, "prometheus"),
    ];
    SampleOut {
        interval: duration(s.interval),
        retention: duration(s.retention),
        sinks: sinks
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect(),
        influx: s.influx.as_ref().map(|i| match i {
            InfluxPlan::V1 {
                url,
                db,
                create_database,
            } => InfluxOut {
                version: 1,
                url: redact_url(url),
                db: Some(db.clone()),
                create_database: Some(*create_database),
                org: None,
                bucket: None,
                token_env: None,
                token: None,
            },
            InfluxPlan::V2 {
                url,
                org,
                bucket,
                token_env,
            } => InfluxOut {
                version: 2,
                url: redact_url(url),
                db: None,
                create_database: None,
                org: Some(org.clone()),
                bucket: Some(bucket.clone()),
                token_env: Some(token_env.clone()),
                token: Some(REDACTED),
            },
        }),
        queries: s
            .queries
            .iter()
            .map(|q| QueryOut {
                name: q.name.clone(),
                nodes: q.nodes.clone(),
                sql: q.sql.clone(),
                tags: q.tags.clone(),
                fields: q.fields.clone(),
            })
            .collect(),
    }
}

fn chaos_out(c: &chaos::Scenario) -> ChaosOut {
    let params = match c.kind {
        chaos::FaultKind::Latency => format!(
            "delay {}, jitter {}",
            duration(c.template.delay),
            duration(c.template.jitter)
        ),
        chaos::FaultKind::Bandwidth => format!("{} bytes/s", c.template.bytes_per_sec),
        _ => String::new(),
    };
    let (low, high) = c.every;
    ChaosOut {
        fault: c.kind.to_string(),
        targets: c.targets.iter().map(ToString::to_string).collect(),
        duration: duration(c.duration),
        every: if low == high {
            duration(low)
        } else {
            format!("{}..{}", duration(low), duration(high))
        },
        params,
    }
}

/// As a lab file writes it: `2h`, `1m`, `30s`, `500ms`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        _ if !d.subsec_nanos().is_multiple_of(1_000_000) => format!("{d:?}"),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(duration(Duration::from_secs(7200)), "2h");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn passwords_and_secret_looking_values_are_hidden() {
        assert_eq!(redact_url("http://u:pw@h:1/x"), "http://u:***@h:1/x");
        assert_eq!(redact_url("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(env_value("API_TOKEN", "abc"), "***");
        assert_eq!(env_value("API_TOKEN", "${secret.t}"), "${secret.t}");
        assert_eq!(env_value("PORT", "8080"), "8080");
        assert_eq!(env_value("URL", "postgres://a:b@h/db"), "postgres://a:***@h/db");
    }
}
