//! Checking `[hum]`: the node it writes to, the workload (a script file is
//! read here), and every number in range.

use toml::Spanned;

use super::{Checker, is_identifier};
use crate::Problem;
use crate::plan::{HumPlan, HumWorkload};
use crate::raw::{Int, RawHum, RawRate, Single};

const MAX_CLIENTS: i64 = 1000;
/// Transactions per second: far above what one machine runs, low enough
/// that the schedule's arithmetic stays exact.
const MAX_RATE: f64 = 1_000_000.0;

impl Checker<'_> {
    pub(super) fn hum(&mut self, section: &Single<RawHum>, lab_seed: u64) -> Option<HumPlan> {
        let raw = &section.body;
        let node = match &raw.node {
            Some(node) => self.node_ref("hum.node", node),
            None if section.failed.iter().any(|k| k == "node") => None,
            // The seed lab's writer; a lab without it must say which node.
            None if self.node_names.iter().any(|n| n == "publisher") => Some("publisher".to_string()),
            None => {
                let message = format!("hum.node: missing; {}", self.nodes_are());
                let help = "add `node = \"NODE\"`: the node hum's writes go to";
                self.problems
                    .push(Problem::new(section.span.clone(), message).help(help));
                None
            }
        };
        let workload = match &raw.workload {
            Some(w) => self.workload(w),
            None => Some(HumWorkload::Books),
        };
        let clients = self.int_in("hum.clients", raw.clients.as_ref(), 1..=MAX_CLIENTS, 4);
        let scale = self.int_in("hum.scale", raw.scale.as_ref(), 1..=100_000, 1);
        let seed = self.int_in("hum.seed", raw.seed.as_ref(), 0..=i64::MAX, lab_seed as i64);
        let rate = match raw.rate.as_ref() {
            None => Some(Some(100.0)),
            Some(r) => match r.get_ref() {
                RawRate::Word(w) if w == "max" => Some(None),
                RawRate::Number(n) if *n > 0.0 && *n <= MAX_RATE => Some(Some(*n)),
                other => {
                    let found = match other {
                        RawRate::Word(w) => format!("{w:?}"),
                        // 1e300, not three hundred digits.
                        RawRate::Number(n) if n.abs() >= 1e15 => format!("{n:e}"),
                        RawRate::Number(n) => n.to_string(),
                    };
                    self.problems.push(
                        Problem::new(
                            r.span(),
                            format!("hum.rate: expected transactions per second above 0 and at most {MAX_RATE}, or \"max\"; found {found}"),
                        )
                        .help("rate = 200 runs 200 transactions a second on a schedule; \"max\" runs flat out"),
                    );
                    None
                }
            },
        };
        let read_from = match &raw.read_from {
            None => Some(Vec::new()),
            Some(list) => {
                let mut names = Vec::new();
                let mut ok = true;
                for (i, name) in list.get_ref().0.iter().enumerate() {
                    match self.node_ref(&format!("hum.read_from[{i}]"), name) {
                        Some(n) => names.push(n),
                        None => ok = false,
                    }
                }
                ok.then_some(names)
            }
        };
        let long_transactions = self.share("hum.long_transactions", raw.long_transactions.as_ref());
        let disconnects = self.share("hum.disconnects", raw.disconnects.as_ref());
        Some(HumPlan {
            node: node?,
            workload: workload?,
            clients: clients? as u32,
            rate: rate?,
            scale: scale? as u32,
            read_from: read_from?,
            seed: seed? as u64,
            long_transactions: long_transactions?,
            disconnects: disconnects?,
            spikes: raw.spikes.as_ref().is_some_and(|s| *s.get_ref()),
        })
    }

    fn workload(&mut self, workload: &Spanned<String>) -> Option<HumWorkload> {
        match workload.get_ref().as_str() {
            "tpcb" => return Some(HumWorkload::Tpcb),
            "books" => return Some(HumWorkload::Books),
            _ => {}
        }
        let written = workload.get_ref();
        let problem = |message: String| {
            Problem::new(workload.span(), format!("hum.workload: {message}"))
                .help("use \"tpcb\", \"books\", or the path of a pgbench-style .sql script relative to the lab file")
        };
        if is_identifier(written, usize::MAX) {
            self.problems
                .push(problem(format!("unknown workload {written:?}")));
            return None;
        }
        let path = self.inputs.dir.join(written);
        match (self.inputs.read)(&path).map(String::from_utf8) {
            Ok(Ok(text)) => Some(HumWorkload::Script { path, text }),
            Ok(Err(_)) => {
                self.problems
                    .push(problem(format!("{written:?} is not UTF-8 text")));
                None
            }
            Err(error) => {
                self.problems
                    .push(problem(format!("cannot read script {written:?}: {error}")));
                None
            }
        }
    }

    /// An optional integer within `range`, `default` when absent.
    pub(super) fn int_in(
        &mut self,
        path: &str,
        value: Option<&Spanned<Int>>,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> Option<i64> {
        let Some(value) = value else { return Some(default) };
        let n = value.get_ref().0;
        if range.contains(&n) {
            return Some(n);
        }
        let message = format!(
            "{path}: expected an integer from {} to {}, found {n}",
            range.start(),
            range.end()
        );
        self.problems.push(Problem::new(value.span(), message));
        None
    }

    /// An optional share from 0 to 1, 0 when absent.
    fn share(&mut self, path: &str, value: Option<&Spanned<f64>>) -> Option<f64> {
        let Some(value) = value else { return Some(0.0) };
        let v = *value.get_ref();
        if (0.0..=1.0).contains(&v) {
            return Some(v);
        }
        let message = format!("{path}: expected a share from 0 to 1 (0.01 is 1%), found {v}");
        self.problems.push(Problem::new(value.span(), message));
        None
    }
}
