//! Raw lab → [`Plan`]: every value judged, every name resolved, schema files
//! read, and every problem collected with the span it belongs to. Never
//! replaces a bad value silently; when a value is bad, what depends on it is
//! not checked again, so one mistake is reported once.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::plan::{NodePlan, Plan, ReplicationPlan, SecretPlan, ServicePlan, SettingAt};
use crate::raw::{Int, RawDoc, RawLab, RawNode, RawSecret, RawService, Section, Span};
use crate::{Location, Problem, location_at};

mod backend;
mod chaos;
mod data;
mod hum;
mod replication;
mod sample;
mod service;
mod service_log;
mod service_run;
mod topology;

/// What checking needs besides the raw lab: where it came from, and how to
/// read the files it names.
pub(crate) struct Inputs<'a> {
    pub(crate) source: &'a str,
    /// The lab file as it appears in error locations.
    pub(crate) file: &'a Path,
    /// The lab file as recorded in [`Plan::file`].
    pub(crate) plan_file: Option<PathBuf>,
    /// What relative schema paths are resolved against.
    pub(crate) dir: &'a Path,
    /// Reads a schema file; the seed lab reads from memory.
    pub(crate) read: &'a dyn Fn(&Path) -> io::Result<Vec<u8>>,
}

/// Lab, node and replication names: also used in paths and SQL identifiers,
/// so kept short and plain.
const NAME_MAX: usize = 40;
const DEFAULT_POSTGRES_VERSION: u32 = 15;
const PORTS: Range<i64> = 1024..65536;
const PORT_HELP: &str = "give each node its own port, or leave `port` out to let `up` choose a free one";

/// postgresql.conf settings prodhome sets itself to run the lab.
const RESERVED_SETTINGS: &[&str] = &[
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "wal_level",
    "hba_file",
    "ident_file",
    "data_directory",
    "config_file",
];

pub(crate) fn check(doc: RawDoc, inputs: &Inputs<'_>) -> Result<Plan, Vec<Problem>> {
    let mut checker = Checker {
        inputs,
        problems: doc.problems,
        ports: Vec::new(),
        node_names: doc.nodes.iter().map(|n| n.name.get_ref().clone()).collect(),
    };
    let c = &mut checker;
    let lab = doc.lab;
    let top_failed = |key: &str| doc.failed.iter().any(|k| k == key);

    let name = lab_name(c, &lab, top_failed("name"));
    let postgres_version = postgres_version(c, &lab);
    let postgres_version_at = lab.postgres_version.as_ref().map(|v| c.location(v.span()));
    check_run_as(c, &lab);
    let (backend, backend_at) = c.backend(lab.backend.as_ref());
    let api_port = lab
        .api_port
        .as_ref()
        .and_then(|port| c.port("api_port".into(), port));

    let nodes = nodes(c, &doc.nodes, top_failed("postgres"));
    let replications: Vec<ReplicationPlan> = doc
        .replications
        .iter()
        .filter_map(|section| c.replication(section))
        .collect();
    c.topology(&doc.replications, &replications);
    let seed = c.int_in("seed", lab.seed.as_ref(), 0..=i64::MAX, 1).unwrap_or(1) as u64;
    let hum = doc.hum.as_ref().and_then(|section| c.hum(section, seed));
    let (secrets, services) = secrets_and_services(c, &doc.secrets, &doc.services);
    let alert = doc.alert.as_ref().and_then(|a| c.alert(a));
    let data: Vec<_> = doc.data.iter().filter_map(|d| c.data(d)).collect();
    let chaos: Vec<_> = doc
        .chaos
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| c.chaos(i, entry, &replications))
        .collect();
    let sample = match &doc.sample {
        Some(section) => c.sample(section),
        None => Some(crate::plan::SamplePlan::default()),
    };

    if !checker.problems.is_empty() {
        return Err(checker.problems);
    }
    let fingerprint = fingerprint(inputs, &replications, hum.as_ref());
    Ok(Plan {
        name: name.expect("no problems, so the name is present and valid"),
        file: inputs.plan_file.clone(),
        dir: inputs.dir.to_path_buf(),
        postgres_version,
        postgres_version_at,
        backend,
        backend_at,
        run_as: lab.run_as.map(Spanned::into_inner),
        api_port,
        nodes,
        replications,
        seed,
        chaos,
        services,
        secrets,
        alert,
        data,
        hum,
        sample: sample.expect("no problems, so [sample] is valid"),
        fingerprint,
    })
}

/// Every node (a lab needs one at least), then their fixed ports' clashes.
fn nodes(c: &mut Checker<'_>, sections: &[Section<RawNode>], failed: bool) -> Vec<NodePlan> {
    if sections.is_empty() && !failed {
        c.problems.push(
            Problem::new(
                0..0,
                "postgres: no nodes; a lab needs at least one [postgres.NAME] section",
            )
            .help("add a section such as [postgres.publisher]"),
        );
    }
    let nodes: Vec<NodePlan> = sections.iter().filter_map(|section| c.node(section)).collect();
    c.check_port_clashes();
    nodes
}

/// Secrets, then the services that may name them and each other (no
/// dependency cycles).
fn secrets_and_services(
    c: &mut Checker<'_>,
    secrets: &[Section<RawSecret>],
    services: &[Section<RawService>],
) -> (Vec<SecretPlan>, Vec<ServicePlan>) {
    let secret_names: Vec<String> = secrets.iter().map(|s| s.name.get_ref().clone()).collect();
    let service_names: Vec<String> = services.iter().map(|s| s.name.get_ref().clone()).collect();
    let secret_plans: Vec<_> = secrets.iter().filter_map(|s| c.secret(s)).collect();
    let service_plans: Vec<_> = services
        .iter()
        .filter_map(|s| c.service(s, &service_names, &secret_names))
        .collect();
    c.dependency_cycles(services, &service_plans);
    (secret_plans, service_plans)
}

/// The lab's name, which every lab must have.
fn lab_name(c: &mut Checker<'_>, lab: &RawLab, failed: bool) -> Option<String> {
    match &lab.name {
        Some(name) => c.name("name", "lab name", name, NAME_MAX),
        None if failed => None,
        None => {
            c.problems.push(
                Problem::new(0..0, "name: missing; every lab needs a name")
                    .help("add `name = \"mylab\"` at the top of the file"),
            );
            None
        }
    }
}

fn postgres_version(c: &mut Checker<'_>, lab: &RawLab) -> u32 {
    match &lab.postgres_version {
        Some(v) if (10..=99).contains(&v.get_ref().0) => v.get_ref().0 as u32,
        Some(v) => {
            c.problems.push(Problem::new(
                v.span(),
                format!(
                    "postgres_version: expected a Postgres major version 10..=99, found {}",
                    v.get_ref().0
                ),
            ));
            DEFAULT_POSTGRES_VERSION
        }
        None => DEFAULT_POSTGRES_VERSION,
    }
}

/// `run_as`, when given, must look like a unix account name.
fn check_run_as(c: &mut Checker<'_>, lab: &RawLab) {
    let Some(run_as) = &lab.run_as else {
        return;
    };
    let account = run_as.get_ref();
    if account.is_empty()
        || account
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || ch == ':' || ch == '/')
    {
        c.problems.push(
            Problem::new(
                run_as.span(),
                format!("run_as: expected a unix account name, found {account:?}"),
            )
            .help("leave run_as out to use the `postgres` account"),
        );
    }
}

/// The SHA-256 of the lab file and every file it pulls in (schemas, a
/// hum script), in hex.
fn fingerprint(
    inputs: &Inputs<'_>,
    replications: &[ReplicationPlan],
    hum: Option<&crate::plan::HumPlan>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(inputs.source.as_bytes());
    for schema in replications.iter().filter_map(|r| r.schema.as_ref()) {
        hasher.update(schema.sql.as_bytes());
    }
    if let Some(crate::plan::HumPlan {
        workload: crate::plan::HumWorkload::Script { text, .. },
        ..
    }) = hum
    {
        hasher.update(text.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

struct Checker<'a> {
    inputs: &'a Inputs<'a>,
    problems: Vec<Problem>,
    /// Every valid fixed port with where it was written and its owner, for
    /// clashes: (span, port, owner).
    ports: Vec<(Span, u16, String)>,
    /// Every `[postgres.NAME]`, valid or not: a bad node is reported once, at
    /// its header, not again by each replication naming it.
    node_names: Vec<String>,
}

impl Checker<'_> {
    fn location(&self, span: Span) -> Location {
        location_at(self.inputs.source, self.inputs.file, span.start)
    }

    /// A lab, node or replication name: `[a-z_][a-z0-9_]*`, at most `max` chars.
    fn name(&mut self, path: &str, what: &str, name: &Spanned<String>, max: usize) -> Option<String> {
        if is_identifier(name.get_ref(), max) {
            return Some(name.get_ref().clone());
        }
        self.problems.push(
            Problem::new(
                name.span(),
                format!("{path}: invalid {what} {:?}", name.get_ref()),
            )
            .help(format!(
                "use 1 to {max} lowercase letters, digits and _, starting with a letter or _"
            )),
        );
        None
    }

    /// An optional duration string, `default` when absent.
    fn duration_or(
        &mut self,
        path: &str,
        value: Option<&Spanned<String>>,
        default: Duration,
    ) -> Option<Duration> {
        let Some(value) = value else { return Some(default) };
        match crate::duration::parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problems
                    .push(Problem::new(value.span(), format!("{path}: {e}")));
                None
            }
        }
    }

    fn port(&mut self, path: String, port: &Spanned<Int>) -> Option<u16> {
        let value = port.get_ref().0;
        if !PORTS.contains(&value) {
            self.problems.push(
                Problem::new(
                    port.span(),
                    format!(
                        "{path}: port {value} is out of range; expected {}..={}",
                        PORTS.start,
                        PORTS.end - 1
                    ),
                )
                .help("leave the port out to let `up` choose a free one"),
            );
            return None;
        }
        let value = value as u16;
        self.ports.push((port.span(), value, path));
        Some(value)
    }

    /// Two owners of one port: the later one in the file is the mistake.
    fn check_port_clashes(&mut self) {
        self.ports.sort_by_key(|(span, _, _)| span.start);
        let mut owners: HashMap<u16, &str> = HashMap::new();
        for (span, port, path) in &self.ports {
            let owner = path.strip_suffix(".port").unwrap_or(path);
            match owners.get(port) {
                Some(first) => self.problems.push(
                    Problem::new(
                        span.clone(),
                        format!("{path}: port {port} is already used by {first}"),
                    )
                    .help(PORT_HELP),
                ),
                None => {
                    owners.insert(*port, owner);
                }
            }
        }
    }

    fn node(&mut self, section: &Section<RawNode>) -> Option<NodePlan> {
        let path = format!("postgres.{}", section.name.get_ref());
        let name = self.name(&path, "node name", &section.name, NAME_MAX);
        let raw = section.body.as_ref()?;
        let port = raw
            .port
            .as_ref()
            .and_then(|p| self.port(format!("{path}.port"), p));
        let mut settings = Vec::new();
        let mut settings_at = Vec::new();
        if let Some(table) = &raw.settings {
            let mut entries: Vec<_> = table.get_ref().iter().collect();
            entries.sort_by_key(|(k, _)| k.span().start);
            for (key, value) in entries {
                if let Some(setting) = self.setting(&path, key, value) {
                    settings.push(setting);
                    settings_at.push(SettingAt {
                        key: self.location(key.span()),
                        value: self.location(value.span()),
                    });
                }
            }
        }
        let host = raw.host.as_ref().and_then(|h| self.host(&path, h));
        Some(NodePlan {
            name: name?,
            port,
            port_at: raw.port.as_ref().map(|p| self.location(p.span())),
            settings,
            settings_at,
            host,
        })
    }

    /// A node's `host`: a hostname as Swarm and Kubernetes name machines
    /// (RFC 1123 labels: letters, digits, `-`, dots between them).
    fn host(&mut self, path: &str, host: &Spanned<String>) -> Option<String> {
        let value = host.get_ref();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if value.len() <= 253 && value.split('.').all(label_ok) {
            return Some(value.clone());
        }
        self.problems.push(
            Problem::new(host.span(), format!("{path}.host: invalid host name {value:?}"))
                .help("use the machine's hostname as `docker node ls` or `kubectl get nodes` shows it: letters, digits, - and ."),
        );
        None
    }

    /// One postgresql.conf setting, rendered as postgresql.conf wants it.
    fn setting(
        &mut self,
        node: &str,
        key: &Spanned<String>,
        value: &Spanned<toml::Value>,
    ) -> Option<(String, String)> {
        let name = key.get_ref();
        let path = format!("{node}.settings.{name}");
        if !is_setting_name(name) {
            self.problems.push(
                Problem::new(
                    key.span(),
                    format!("{node}.settings: invalid setting name {name:?}"),
                )
                .help("use a postgresql.conf name: lowercase letters, digits, _ and ."),
            );
            return None;
        }
        if RESERVED_SETTINGS.contains(&name.as_str()) {
            let help = if name == "port" {
                format!("set `port` in [{node}] instead, or leave it out to let `up` choose a free one")
            } else {
                format!("remove `{name}`; prodhome sets it to run the lab")
            };
            self.problems.push(
                Problem::new(
                    key.span(),
                    format!("{path}: `{name}` is set by prodhome and cannot be changed here"),
                )
                .help(help),
            );
            return None;
        }
        let rendered = match value.get_ref() {
            toml::Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) if f.is_finite() => Some(f.to_string()),
            toml::Value::Boolean(b) => Some(if *b { "on" } else { "off" }.to_string()),
            _ => None,
        };
        if rendered.is_none() {
            let found = match value.get_ref() {
                toml::Value::Float(f) => format!("float {f}"),
                other => other.type_str().to_string(),
            };
            let problem = Problem::new(
                value.span(),
                format!("{path}: expected a string, number or boolean, found {found}"),
            );
            self.problems.push(match value.get_ref() {
                toml::Value::Table(_) => problem.help(format!(
                    "a setting with a dot in its name needs quotes: \
                     settings = {{ \"{name}.…\" = … }}"
                )),
                toml::Value::Array(_) => problem.help("write a list setting as one string: \"a, b\""),
                toml::Value::Datetime(_) => problem.help("quote it to pass it to Postgres as a string"),
                _ => problem,
            });
        }
        Some((name.clone(), rendered?))
    }
}

/// `[a-z_][a-z0-9_]*`, 1 to `max` chars.
fn is_identifier(s: &str, max: usize) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= max
}

/// `[a-z_][a-z0-9_.]*`: postgresql.conf names, including extension ones
/// such as `auto_explain.log_min_duration`.
fn is_setting_name(s: &str) -> bool {
    is_identifier(&s.replace('.', "_"), usize::MAX) && !s.starts_with('.')
}

#[cfg(test)]
mod tests;
