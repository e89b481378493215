//! Checking `[[chaos]]`: a fault declared in the file is applied exactly as
//! declared or rejected here with its location, never silently ignored.

use std::time::Duration;

use chaos::{Fault, FaultKind, Scenario, Target, parse_target};
use toml::Spanned;

use super::Checker;
use crate::Problem;
use crate::duration::parse_duration;
use crate::plan::ReplicationPlan;
use crate::raw::{RawChaos, Single};

impl Checker<'_> {
    pub(super) fn chaos(
        &mut self,
        i: usize,
        entry: &Single<RawChaos>,
        links: &[ReplicationPlan],
    ) -> Option<Scenario> {
        let path = format!("chaos[{i}]");
        let raw = &entry.body;
        let kind = self.fault_kind(&path, entry)?;
        let targets = self.fault_targets(&path, entry, kind, links)?;
        let duration = self.duration_or(
            &format!("{path}.for"),
            raw.duration.as_ref(),
            Duration::from_secs(10),
        )?;
        let every = self.every(&path, raw)?;
        let template = self.template(&path, raw, kind, targets[0].clone())?;
        self.no_unused_parameters(&path, entry, kind)?;
        Some(Scenario {
            kind,
            targets,
            duration,
            every,
            template,
        })
    }

    fn fault_kind(&mut self, path: &str, entry: &Single<RawChaos>) -> Option<FaultKind> {
        match &entry.body.fault {
            Some(fault) => {
                let kind = FaultKind::parse(fault.get_ref());
                if kind.is_none() {
                    let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                    let message = format!(
                        "{path}.fault: unknown fault {:?}; faults are {}",
                        fault.get_ref(),
                        names.join(", ")
                    );
                    self.problems.push(Problem::new(fault.span(), message));
                }
                kind
            }
            None if entry.failed.iter().any(|k| k == "fault") => None,
            None => {
                self.problems.push(Problem::new(
                    entry.span.clone(),
                    format!("{path}: missing `fault`"),
                ));
                None
            }
        }
    }

    /// `target` and `targets` together, at least one.
    fn fault_targets(
        &mut self,
        path: &str,
        entry: &Single<RawChaos>,
        kind: FaultKind,
        links: &[ReplicationPlan],
    ) -> Option<Vec<Target>> {
        let raw = &entry.body;
        let mut written: Vec<&Spanned<String>> = raw.target.iter().collect();
        if let Some(list) = &raw.targets {
            written.extend(list.get_ref().iter());
        }
        if written.is_empty() {
            let help = "target = \"NODE\" (node faults), \"PUBLISHER->SUBSCRIBER\" or \"clients->NODE\" (link faults), \
                        or targets = [...] to pick one at random each time";
            self.problems
                .push(Problem::new(entry.span.clone(), format!("{path}: missing `target`")).help(help));
            return None;
        }
        let mut targets = Vec::new();
        for target in written {
            targets.push(self.fault_target(path, kind, target, links)?);
        }
        Some(targets)
    }

    /// `every`: one duration or a `LOW..HIGH` range, 30s..60s by default.
    fn every(&mut self, path: &str, raw: &RawChaos) -> Option<(Duration, Duration)> {
        let Some(every) = &raw.every else {
            return Some((Duration::from_secs(30), Duration::from_secs(60)));
        };
        match every.get_ref().split_once("..") {
            Some((low, high)) => match (parse_duration(low), parse_duration(high)) {
                (Ok(low), Ok(high)) if low <= high && !high.is_zero() => Some((low, high)),
                _ => {
                    let message = format!(
                        "{path}.every: expected \"LOW..HIGH\" durations with LOW ≤ HIGH, found {:?}",
                        every.get_ref()
                    );
                    self.problems
                        .push(Problem::new(every.span(), message).help("e.g. every = \"20s..60s\""));
                    None
                }
            },
            None => {
                let one = self.duration_or(&format!("{path}.every"), Some(every), Duration::ZERO)?;
                Some((one, one))
            }
        }
    }

    /// The fault with its parameters, applied to one of the targets each time.
    fn template(&mut self, path: &str, raw: &RawChaos, kind: FaultKind, target: Target) -> Option<Fault> {
        let mut template = Fault::new(kind, target);
        template.delay = self.duration_or(&format!("{path}.delay"), raw.delay.as_ref(), template.delay)?;
        template.jitter =
            self.duration_or(&format!("{path}.jitter"), raw.jitter.as_ref(), template.jitter)?;
        if let Some(rate) = &raw.bytes_per_sec {
            template.bytes_per_sec =
                self.int_in(&format!("{path}.bytes_per_sec"), Some(rate), 1..=i64::MAX, 0)? as u64;
        }
        Some(template)
    }

    /// Parameters that the fault would not use are a mistake, not a no-op.
    fn no_unused_parameters(&mut self, path: &str, entry: &Single<RawChaos>, kind: FaultKind) -> Option<()> {
        let raw = &entry.body;
        let unused = [
            (
                "delay",
                raw.delay.as_ref().map(|d| d.span()),
                kind == FaultKind::Latency,
            ),
            (
                "jitter",
                raw.jitter.as_ref().map(|d| d.span()),
                kind == FaultKind::Latency,
            ),
            (
                "bytes_per_sec",
                raw.bytes_per_sec.as_ref().map(|d| d.span()),
                kind == FaultKind::Bandwidth,
            ),
        ];
        for (key, span, used) in unused {
            if let (Some(span), false) = (span, used) {
                self.problems.push(Problem::new(
                    span,
                    format!("{path}.{key}: a {kind} fault has no {key}"),
                ));
                return None;
            }
        }
        if kind.instant() && raw.duration.is_some() {
            let span = raw
                .duration
                .as_ref()
                .map(|d| d.span())
                .unwrap_or(entry.span.clone());
            self.problems.push(
                Problem::new(
                    span,
                    format!("{path}.for: a {kind} fault is over once applied; it has no duration"),
                )
                .help("remove `for`"),
            );
            return None;
        }
        Some(())
    }

    fn fault_target(
        &mut self,
        path: &str,
        kind: FaultKind,
        written: &Spanned<String>,
        links: &[ReplicationPlan],
    ) -> Option<Target> {
        let problem = |message: String| Problem::new(written.span(), format!("{path}.target: {message}"));
        let target = match parse_target(kind, written.get_ref()) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(problem(e));
                return None;
            }
        };
        let known = |n: &str| self.node_names.iter().any(|m| m == n);
        let ok = match &target {
            Target::Node { node } | Target::Clients { node } => known(node),
            Target::Link {
                publisher,
                subscriber,
            } => links
                .iter()
                .any(|r| &r.publisher == publisher && r.subscribers.contains(subscriber)),
        };
        if ok {
            return Some(target);
        }
        let message = match &target {
            Target::Link { .. } => {
                let existing: Vec<String> = links
                    .iter()
                    .flat_map(|r| r.subscribers.iter().map(move |s| format!("{}->{s}", r.publisher)))
                    .collect();
                format!(
                    "no replication link {target}; links are {}",
                    if existing.is_empty() {
                        "none".into()
                    } else {
                        existing.join(", ")
                    }
                )
            }
            _ => format!(
                "no postgres node {:?}; {}",
                written.get_ref().trim_start_matches("clients->"),
                self.nodes_are()
            ),
        };
        self.problems.push(problem(message));
        None
    }
}
