//! Checking `[service.NAME]`, `[secret.NAME]` and `[alert]`: names,
//! references in env values, dependencies (unknown names and cycles are
//! located errors), probes and restart settings.

use std::time::Duration;

use toml::Spanned;

use super::{Checker, NAME_MAX};
use crate::Problem;
use crate::plan::{AlertPlan, DependsOn, ProbeCheckPlan, ProbePlan, RestartPlan, SecretPlan, ServicePlan};
use crate::raw::{RawAlert, RawProbe, RawSecret, RawService, Section, Single, closest};

const SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2",
];
const NODE_ATTRS: &[&str] = &["url", "host", "port", "user", "password", "database"];

/// Alphabets a secret may be drawn from.
pub(crate) fn alphabet(name: &str) -> Option<&'static str> {
    match name {
        "alnum" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
        "hex" => Some("0123456789abcdef"),
        "base64url" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        _ => None,
    }
}

impl Checker<'_> {
    pub(super) fn secret(&mut self, section: &Section<RawSecret>) -> Option<SecretPlan> {
        let path = format!("secret.{}", section.name.get_ref());
        let name = self.name(&path, "secret name", &section.name, NAME_MAX);
        let raw = section.body.as_ref()?;
        let length = self.int_in(&format!("{path}.length"), raw.length.as_ref(), 8..=256, 32);
        let chars = match &raw.alphabet {
            None => alphabet("alnum"),
            Some(a) => {
                let found = alphabet(a.get_ref());
                if found.is_none() {
                    let message = format!(
                        "{path}.alphabet: unknown alphabet {:?}; alphabets are alnum, hex, base64url",
                        a.get_ref()
                    );
                    self.problems.push(Problem::new(a.span(), message));
                }
                found
            }
        };
        Some(SecretPlan {
            name: name?,
            length: length? as usize,
            alphabet: chars?.to_string(),
        })
    }

    pub(super) fn service(
        &mut self,
        section: &Section<RawService>,
        services: &[String],
        secrets: &[String],
    ) -> Option<ServicePlan> {
        let path = format!("service.{}", section.name.get_ref());
        let name = self.service_name(&path, section);
        let raw = section.body.as_ref()?;
        let run = self.service_run(&path, raw);
        // An image brings its own command; a bad `image` is its own problem.
        let image_only = raw.image.is_some() && raw.command.is_none();
        let command = if image_only {
            Some(Vec::new())
        } else {
            self.command(&path, section, raw)
        };
        let (env, env_ok) = self.env(&path, raw, secrets);
        let workdir = match &raw.workdir {
            Some(w) => self.inputs.dir.join(w.get_ref()),
            None => self.inputs.dir.to_path_buf(),
        };
        let (depends_on, deps_ok) = self.depends_on(&path, raw, services);
        let ready = self.optional_probe(&format!("{path}.ready"), raw.ready.as_ref());
        let live = self.optional_probe(&format!("{path}.live"), raw.live.as_ref());
        let restart = self.restart(&path, raw.restart.as_ref());
        let max_restarts = self.int_in(
            &format!("{path}.max_restarts"),
            raw.max_restarts.as_ref(),
            0..=1000,
            5,
        );
        let stop_signal = self.stop_signal(&path, raw.stop_signal.as_ref());
        let stop_timeout = self.duration_or(
            &format!("{path}.stop_timeout"),
            raw.stop_timeout.as_ref(),
            Duration::from_secs(10),
        );
        let log_level = self.log_level(&path, raw.log_level.as_ref());
        if !(env_ok && deps_ok) {
            return None;
        }
        Some(ServicePlan {
            name: name?,
            command: command?,
            command_at: match (&raw.command, &raw.image) {
                (Some(c), _) => self.location(c.span()),
                (None, Some(image)) => self.location(image.span()),
                (None, None) => return None,
            },
            env,
            workdir,
            depends_on,
            ready: ready?,
            live: live?,
            restart: restart?,
            max_restarts: max_restarts? as u32,
            stop_signal: stop_signal?,
            stop_timeout: stop_timeout?,
            log_level: log_level?,
            run: run?,
        })
    }

    /// The service's name, which no postgres node may share.
    fn service_name(&mut self, path: &str, section: &Section<RawService>) -> Option<String> {
        let name = self.name(path, "service name", &section.name, NAME_MAX);
        if name.as_ref().is_some_and(|n| self.node_names.contains(n)) {
            let message = format!(
                "{path}: a postgres node is already named {:?}; names are shared by logs, status and restart",
                section.name.get_ref()
            );
            self.problems
                .push(Problem::new(section.name.span(), message).help("give the service another name"));
            return None;
        }
        name
    }

    fn command(
        &mut self,
        path: &str,
        section: &Section<RawService>,
        raw: &RawService,
    ) -> Option<Vec<String>> {
        match &raw.command {
            Some(c) if !c.get_ref().is_empty() && !c.get_ref()[0].get_ref().is_empty() => Some(
                c.get_ref()
                    .iter()
                    .map(|a| a.get_ref().clone())
                    .collect::<Vec<_>>(),
            ),
            Some(c) => {
                self.problems.push(Problem::new(
                    c.span(),
                    format!("{path}.command: expected the program and its arguments, found an empty list"),
                ));
                None
            }
            None if section.failed.iter().any(|k| k == "command") => None,
            None => {
                let message = format!("{path}: missing `command`");
                self.problems.push(
                    Problem::new(section.name.span(), message)
                        .help("command = [\"./app\", \"--port\", \"8080\"]"),
                );
                None
            }
        }
    }

    /// The environment in file order, and whether all its references resolve.
    fn env(&mut self, path: &str, raw: &RawService, secrets: &[String]) -> (Vec<(String, String)>, bool) {
        let mut env = Vec::new();
        let mut env_ok = true;
        if let Some(table) = &raw.env {
            let mut entries: Vec<_> = table.get_ref().iter().collect();
            entries.sort_by_key(|(k, _)| k.span().start);
            for (key, value) in entries {
                env_ok &= self.references(&format!("{path}.env.{}", key.get_ref()), value, secrets);
                env.push((key.get_ref().clone(), value.get_ref().clone()));
            }
        }
        (env, env_ok)
    }

    /// The dependencies in file order, and whether all of them are valid.
    fn depends_on(
        &mut self,
        path: &str,
        raw: &RawService,
        services: &[String],
    ) -> (Vec<(String, DependsOn)>, bool) {
        let mut depends_on = Vec::new();
        let mut deps_ok = true;
        if let Some(table) = &raw.depends_on {
            let mut entries: Vec<_> = table.get_ref().iter().collect();
            entries.sort_by_key(|(k, _)| k.span().start);
            for (dep, condition) in entries {
                match self.dependency(path, dep, condition, services) {
                    Some(d) => depends_on.push((dep.get_ref().clone(), d)),
                    None => deps_ok = false,
                }
            }
        }
        (depends_on, deps_ok)
    }

    /// One `depends_on` entry: a known node or service and a condition.
    fn dependency(
        &mut self,
        path: &str,
        dep: &Spanned<String>,
        condition: &Spanned<String>,
        services: &[String],
    ) -> Option<DependsOn> {
        let known = self.node_names.contains(dep.get_ref()) || services.contains(dep.get_ref());
        if !known {
            let mut names: Vec<String> = self.node_names.clone();
            names.extend(services.iter().filter(|s| !self.node_names.contains(s)).cloned());
            let message = format!(
                "{path}.depends_on: no node or service {:?}; there are {}",
                dep.get_ref(),
                names.join(", ")
            );
            let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
            let problem = Problem::new(dep.span(), message);
            self.problems.push(match closest(dep.get_ref(), &candidates) {
                Some(near) => problem.help(format!("did you mean {near:?}?")),
                None => problem,
            });
            return None;
        }
        match condition.get_ref().as_str() {
            "started" => Some(DependsOn::Started),
            "ready" => Some(DependsOn::Ready),
            "healthy" => Some(DependsOn::Healthy),
            other => {
                let message = format!(
                    "{path}.depends_on.{}: expected \"started\", \"ready\" or \"healthy\", found {other:?}",
                    dep.get_ref()
                );
                self.problems.push(Problem::new(condition.span(), message));
                None
            }
        }
    }

    fn restart(&mut self, path: &str, restart: Option<&Spanned<String>>) -> Option<RestartPlan> {
        match restart.map(|r| (r, r.get_ref().as_str())) {
            None => Some(RestartPlan::OnFailure),
            Some((_, "no")) => Some(RestartPlan::No),
            Some((_, "on-failure")) => Some(RestartPlan::OnFailure),
            Some((_, "always")) => Some(RestartPlan::Always),
            Some((r, other)) => {
                let message =
                    format!("{path}.restart: expected \"no\", \"on-failure\" or \"always\", found {other:?}");
                self.problems.push(Problem::new(r.span(), message));
                None
            }
        }
    }

    /// The signal's full name (`TERM` is `SIGTERM`), SIGTERM by default.
    fn stop_signal(&mut self, path: &str, signal: Option<&Spanned<String>>) -> Option<String> {
        let Some(sig) = signal else {
            return Some("SIGTERM".to_string());
        };
        let upper = sig.get_ref().to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        if SIGNALS.contains(&full.as_str()) {
            return Some(full);
        }
        let message = format!(
            "{path}.stop_signal: unknown signal {:?}; use one of {}",
            sig.get_ref(),
            SIGNALS.join(", ")
        );
        self.problems.push(Problem::new(sig.span(), message));
        None
    }

    /// Every `${...}` in `value` must name something that exists.
    fn references(&mut self, path: &str, value: &Spanned<String>, secrets: &[String]) -> bool {
        let text = value.get_ref();
        let mut rest = text.as_str();
        let mut ok = true;
        // Bounded by the text's length: each turn consumes a `${`.
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                self.problems.push(Problem::new(
                    value.span(),
                    format!("{path}: `${{` without its closing `}}`"),
                ));
                return false;
            };
            let reference = &after[..end];
            if let Err(message) = self.reference(reference, secrets) {
                self.problems.push(Problem::new(value.span(), format!("{path}: ${{{reference}}}: {message}")).help(
                    "references are ${postgres.NODE.url|host|port|user|password|database} and ${secret.NAME}",
                ));
                ok = false;
            }
            rest = &after[end + 1..];
        }
        ok
    }

    fn reference(&self, reference: &str, secrets: &[String]) -> Result<(), String> {
        let parts: Vec<&str> = reference.split('.').collect();
        match parts.as_slice() {
            ["postgres", node, attr] => {
                if !self.node_names.iter().any(|n| n == node) {
                    return Err(format!("no postgres node {node:?}; {}", self.nodes_are()));
                }
                if !NODE_ATTRS.contains(attr) {
                    return Err(format!(
                        "unknown attribute {attr:?}; a node has {}",
                        NODE_ATTRS.join(", ")
                    ));
                }
                Ok(())
            }
            ["secret", name] if secrets.iter().any(|s| s == name) => Ok(()),
            ["secret", name] => Err(format!("no [secret.{name}] in this lab")),
            _ => Err("not a reference prodhome knows".into()),
        }
    }

    fn optional_probe(&mut self, path: &str, probe: Option<&Spanned<RawProbe>>) -> Option<Option<ProbePlan>> {
        let Some(probe) = probe else { return Some(None) };
        self.probe(path, probe).map(Some)
    }

    fn probe(&mut self, path: &str, probe: &Spanned<RawProbe>) -> Option<ProbePlan> {
        let raw = probe.get_ref();
        let check = match (&raw.tcp, &raw.http, &raw.exec) {
            (Some(port), None, None) => {
                let port = self.int_in(&format!("{path}.tcp"), Some(port), 1..=65535, 0)?;
                ProbeCheckPlan::Tcp(port as u16)
            }
            (None, Some(url), None) if url.get_ref().starts_with("http://") => {
                ProbeCheckPlan::Http(url.get_ref().clone())
            }
            (None, Some(url), None) => {
                let message = format!("{path}.http: expected an http:// URL, found {:?}", url.get_ref());
                self.problems.push(Problem::new(url.span(), message));
                return None;
            }
            (None, None, Some(argv)) if !argv.get_ref().is_empty() => {
                ProbeCheckPlan::Exec(argv.get_ref().iter().map(|a| a.get_ref().clone()).collect())
            }
            _ => {
                let message = format!(
                    "{path}: expected exactly one of tcp = PORT, http = \"URL\" or exec = [\"argv\", …]"
                );
                self.problems.push(Problem::new(probe.span(), message));
                return None;
            }
        };
        let interval = self.duration_or(
            &format!("{path}.interval"),
            raw.interval.as_ref(),
            Duration::from_secs(1),
        );
        let timeout = self.duration_or(
            &format!("{path}.timeout"),
            raw.timeout.as_ref(),
            Duration::from_secs(1),
        );
        let threshold = self.int_in(&format!("{path}.threshold"), raw.threshold.as_ref(), 1..=100, 3);
        Some(ProbePlan {
            check,
            interval: interval?,
            timeout: timeout?,
            threshold: threshold? as u32,
        })
    }

    pub(super) fn alert(&mut self, section: &Single<RawAlert>) -> Option<AlertPlan> {
        let raw = &section.body;
        let command = raw.command.as_ref().map(|c| {
            c.get_ref()
                .iter()
                .map(|a| a.get_ref().clone())
                .collect::<Vec<_>>()
        });
        if let (Some(c), Some(list)) = (&raw.command, &command)
            && list.is_empty()
        {
            self.problems.push(Problem::new(
                c.span(),
                "alert.command: expected the program and its arguments, found an empty list",
            ));
            return None;
        }
        if let Some(hook) = &raw.webhook
            && !hook.get_ref().starts_with("http://")
        {
            let message = format!(
                "alert.webhook: expected an http:// URL, found {:?}",
                hook.get_ref()
            );
            self.problems.push(Problem::new(hook.span(), message));
            return None;
        }
        let down_after = self.duration_or(
            "alert.down_after",
            raw.down_after.as_ref(),
            Duration::from_secs(10),
        );
        let min_interval = self.duration_or(
            "alert.min_interval",
            raw.min_interval.as_ref(),
            Duration::from_secs(60),
        );
        if raw.command.is_none()
            && raw.webhook.is_none()
            && !section.failed.iter().any(|k| k == "command" || k == "webhook")
        {
            self.problems.push(
                Problem::new(
                    section.span.clone(),
                    "alert: needs `command` or `webhook` (or both)",
                )
                .help(
                    "command = [\"notify-send\", \"prodhome\"] or webhook = \"http://127.0.0.1:9000/hook\"",
                ),
            );
            return None;
        }
        let lag_bytes = match &raw.lag_bytes {
            None => Some(None),
            Some(v) => self.int_in("alert.lag_bytes", Some(v), 1..=i64::MAX, 0).map(Some),
        };
        Some(AlertPlan {
            command,
            webhook: raw.webhook.as_ref().map(|w| w.get_ref().clone()),
            down_after: down_after?,
            lag_bytes: lag_bytes?,
            min_interval: min_interval?,
        })
    }

    /// A cycle among services' depends_on, reported at the first service in it.
    pub(super) fn dependency_cycles(&mut self, sections: &[Section<RawService>], services: &[ServicePlan]) {
        for start in services {
            let mut path = vec![start.name.clone()];
            if let Some(cycle) = find_cycle(&start.name, services, &mut path) {
                if cycle.first() != Some(&start.name) {
                    continue; // reported from its first member
                }
                let at = sections
                    .iter()
                    .find(|s| s.name.get_ref() == &start.name)
                    .map(|s| s.name.span())
                    .unwrap_or(0..0);
                let message = format!(
                    "service.{}.depends_on: a cycle: {}",
                    start.name,
                    cycle.join(" -> ")
                );
                self.problems.push(
                    Problem::new(at, message).help("a service cannot wait, even indirectly, for itself"),
                );
                return;
            }
        }
    }
}

/// Depth-first: a path from `current` back to `path[0]`, if any. Bounded:
/// a name never enters the path twice.
fn find_cycle(current: &str, services: &[ServicePlan], path: &mut Vec<String>) -> Option<Vec<String>> {
    let service = services.iter().find(|s| s.name == current)?;
    for (dep, _) in &service.depends_on {
        if dep == &path[0] {
            let mut cycle = path.clone();
            cycle.push(dep.clone());
            return Some(cycle);
        }
        if path.contains(dep) {
            continue;
        }
        path.push(dep.clone());
        if let Some(cycle) = find_cycle(dep, services, path) {
            return Some(cycle);
        }
        path.pop();
    }
    None
}
