//! Checks across replications, once each one is valid on its own: the
//! subscription (and slot) names Postgres will be given, one source per
//! table on each subscriber, and no table going round in a loop.

use std::collections::{BTreeSet, HashMap};

use super::Checker;
use crate::Problem;
use crate::plan::{ReplicationPlan, Tables};
use crate::raw::{RawReplication, RawTables, Section, Span};

/// Postgres' longest identifier (NAMEDATALEN - 1); longer subscription and
/// slot names are refused or truncated.
const PG_NAME_MAX: usize = 63;

/// One checked replication with the places its parts were written.
struct Placed<'a> {
    plan: &'a ReplicationPlan,
    /// `[replication.NAME]`'s name.
    name: Span,
    /// Each subscriber as listed.
    subscribers: Vec<Span>,
    /// Each table as listed; for "all" (written or implied) the one span.
    tables: Vec<Span>,
}

impl Placed<'_> {
    fn path(&self) -> String {
        format!("replication.{}", self.plan.name)
    }

    /// Where to point for table `t` (normalized), or at "all".
    fn table_at(&self, table: &str) -> Span {
        match &self.plan.tables {
            Tables::All => self.tables[0].clone(),
            Tables::List(list) => list
                .iter()
                .position(|t| normalized(t) == table)
                .map_or(self.name.clone(), |i| self.tables[i].clone()),
        }
    }

    /// Whether it carries `table`; only "all" carries [`ALL`].
    fn carries(&self, table: &str) -> bool {
        match &self.plan.tables {
            Tables::All => true,
            Tables::List(list) => list.iter().any(|t| normalized(t) == table),
        }
    }
}

/// `public.t` and `t` are one table.
fn normalized(table: &str) -> &str {
    table.strip_prefix("public.").unwrap_or(table)
}

/// The word for a table in messages; [`ALL`] is every table.
fn shown(table: &str) -> String {
    if table == ALL {
        "every table".to_string()
    } else {
        format!("table {table:?}")
    }
}

/// Stands for "every table" where a replication has `tables = "all"`.
const ALL: &str = "*";

impl Checker<'_> {
    pub(super) fn topology(&mut self, sections: &[Section<RawReplication>], plans: &[ReplicationPlan]) {
        let placed: Vec<Placed<'_>> = plans.iter().filter_map(|p| place(p, sections)).collect();
        self.subscription_names(&placed);
        self.one_source_per_table(&placed);
        self.no_loops(&placed);
    }

    /// `<replication>_<subscriber>` names a subscription and its slot: it
    /// must fit Postgres' identifiers and be the lab's only one.
    fn subscription_names(&mut self, placed: &[Placed<'_>]) {
        let mut seen: HashMap<String, (String, String)> = HashMap::new();
        for r in placed {
            for (i, (subscriber, at)) in r.plan.subscribers.iter().zip(&r.subscribers).enumerate() {
                let name = model::subscription_name(&r.plan.name, subscriber);
                let item = format!("{}.subscribers[{i}]", r.path());
                if name.len() > PG_NAME_MAX {
                    let message = format!(
                        "{item}: the subscription and slot name for {subscriber:?}, {name:?}, would be {} bytes; Postgres allows {PG_NAME_MAX}",
                        name.len()
                    );
                    let help = format!(
                        "shorten the replication's or the node's name: together they may have {} characters",
                        PG_NAME_MAX - 1
                    );
                    self.problems.push(Problem::new(at.clone(), message).help(help));
                } else if let Some((other, other_sub)) = seen.get(&name) {
                    let message = format!(
                        "{item}: the subscription name for {subscriber:?}, {name:?}, is also replication {other}'s for {other_sub:?}"
                    );
                    let help = "rename one of the two replications (or a node) so the names differ";
                    self.problems.push(Problem::new(at.clone(), message).help(help));
                } else {
                    seen.insert(name, (r.plan.name.clone(), subscriber.clone()));
                }
            }
        }
    }

    /// A node receiving one table from two publications gets every row
    /// twice (and conflicts on its keys).
    fn one_source_per_table(&mut self, placed: &[Placed<'_>]) {
        for (j, later) in placed.iter().enumerate() {
            for earlier in &placed[..j] {
                let shared: Vec<&String> = later
                    .plan
                    .subscribers
                    .iter()
                    .filter(|s| earlier.plan.subscribers.contains(s))
                    .collect();
                let Some(subscriber) = shared.first() else {
                    continue;
                };
                let Some(table) = overlap(earlier.plan, later.plan) else {
                    continue;
                };
                let message = format!(
                    "{}.tables: node {subscriber:?} would receive {} from replication {} too",
                    later.path(),
                    shown(&table),
                    earlier.plan.name,
                );
                let help = "a table may reach a node from one publication only; \
                            remove it from one of the two replications, or list tables instead of \"all\"";
                self.problems
                    .push(Problem::new(later.table_at(&table), message).help(help));
            }
        }
    }

    /// A table replicated round a circle of nodes comes back to where it
    /// was written, and every change runs round for ever.
    fn no_loops(&mut self, placed: &[Placed<'_>]) {
        let mut tables: BTreeSet<&str> = BTreeSet::from([ALL]);
        for r in placed {
            if let Tables::List(list) = &r.plan.tables {
                tables.extend(list.iter().map(|t| normalized(t)));
            }
        }
        let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
        for table in tables {
            let carriers: Vec<usize> = (0..placed.len()).filter(|&i| placed[i].carries(table)).collect();
            let Some(cycle) = find_loop(placed, &carriers) else {
                continue;
            };
            let mut key = cycle.clone();
            key.sort_unstable();
            if !reported.insert(key) {
                continue;
            }
            let last = &placed[*cycle.iter().max().expect("a loop has replications")];
            let mut nodes: Vec<&str> = cycle.iter().map(|&i| placed[i].plan.publisher.as_str()).collect();
            nodes.push(nodes[0]);
            let names: Vec<&str> = cycle.iter().map(|&i| placed[i].plan.name.as_str()).collect();
            let message = format!(
                "{}: {} goes round in a loop: {} (replications {})",
                last.path(),
                shown(table),
                nodes.join(" -> "),
                names.join(", ")
            );
            let help = "every change would be sent back where it came from; \
                        remove the table from one replication of the loop";
            self.problems
                .push(Problem::new(last.name.clone(), message).help(help));
        }
    }
}

/// The first table both replications carry, if any ([`ALL`] when both
/// carry every table).
fn overlap(a: &ReplicationPlan, b: &ReplicationPlan) -> Option<String> {
    match (&a.tables, &b.tables) {
        (Tables::All, Tables::All) => Some(ALL.to_string()),
        (Tables::All, Tables::List(list)) | (Tables::List(list), Tables::All) => {
            list.first().map(|t| normalized(t).to_string())
        }
        (Tables::List(x), Tables::List(y)) => y
            .iter()
            .map(|t| normalized(t))
            .find(|t| x.iter().any(|u| normalized(u) == *t))
            .map(str::to_string),
    }
}

/// A cycle of replications among `carriers` (indexes into `placed`), each
/// one's subscriber the next one's publisher, in file order of its start.
fn find_loop(placed: &[Placed<'_>], carriers: &[usize]) -> Option<Vec<usize>> {
    for &start in carriers {
        let mut path = vec![start];
        if let Some(cycle) = walk(placed, carriers, &mut path) {
            return Some(cycle);
        }
    }
    None
}

/// Depth-first from the last replication on `path`; bounded because a
/// replication never enters the path twice.
fn walk(placed: &[Placed<'_>], carriers: &[usize], path: &mut Vec<usize>) -> Option<Vec<usize>> {
    let from = &placed[*path.last()?].plan;
    let origin = &placed[path[0]].plan.publisher;
    for &next in carriers {
        let to = &placed[next].plan;
        if path.contains(&next) || !from.subscribers.contains(&to.publisher) {
            continue;
        }
        path.push(next);
        if to.subscribers.contains(origin) {
            return Some(path.clone());
        }
        if let Some(cycle) = walk(placed, carriers, path) {
            return Some(cycle);
        }
        path.pop();
    }
    None
}

/// The spans of a checked replication, from its section.
fn place<'a>(plan: &'a ReplicationPlan, sections: &[Section<RawReplication>]) -> Option<Placed<'a>> {
    let section = sections.iter().find(|s| s.name.get_ref() == &plan.name)?;
    let raw = section.body.as_ref()?;
    let subscribers = raw
        .subscribers
        .as_ref()?
        .get_ref()
        .0
        .iter()
        .map(|s| s.span())
        .collect();
    let tables = match raw.tables.as_ref() {
        None => vec![section.name.span()],
        Some(t) => match t.get_ref() {
            RawTables::Word(_) => vec![t.span()],
            RawTables::List(list) => list.iter().map(|t| t.span()).collect(),
        },
    };
    Some(Placed {
        plan,
        name: section.name.span(),
        subscribers,
        tables,
    })
}
