//! Parents before children: FK depth by Kahn's algorithm. A cycle is broken
//! where a foreign key is nullable (filled NULL); otherwise refused naming
//! its tables and constraints.

use std::collections::BTreeSet;

use crate::catalog::{Kind, Table};

/// An FK edge child → parent among the chosen tables.
struct Edge {
    child: usize,
    parent: usize,
    constraint: String,
    nullable: bool,
}

/// The chosen tables in fill order with their depth and the foreign keys
/// filled NULL to break a cycle.
pub(super) fn order<'a>(
    chosen: &[&'a Table],
    refusals: &mut Vec<String>,
) -> Vec<(&'a Table, usize, BTreeSet<String>)> {
    let mut edges = edges(chosen);
    let mut nulled: Vec<BTreeSet<String>> = vec![BTreeSet::new(); chosen.len()];
    // A self-reference is a cycle of one.
    edges.retain(|e| {
        if e.child != e.parent {
            return true;
        }
        if e.nullable {
            nulled[e.child].insert(e.constraint.clone());
        } else {
            refusals.push(format!(
                "{}: foreign key {} references its own table with NOT NULL columns; no first row can satisfy it",
                chosen[e.child].name, e.constraint
            ));
        }
        false
    });
    let mut depth = vec![None; chosen.len()];
    let mut broke = false;
    loop {
        kahn(&edges, &mut depth);
        let stuck: Vec<usize> = (0..chosen.len()).filter(|i| depth[*i].is_none()).collect();
        if stuck.is_empty() {
            break;
        }
        let in_cycle = |e: &Edge| stuck.contains(&e.child) && stuck.contains(&e.parent);
        if !broke && edges.iter().any(|e| in_cycle(e) && e.nullable) {
            broke = true;
            edges.retain(|e| {
                if in_cycle(e) && e.nullable {
                    nulled[e.child].insert(e.constraint.clone());
                    return false;
                }
                true
            });
            continue;
        }
        let tables: Vec<&str> = stuck.iter().map(|i| chosen[*i].name.as_str()).collect();
        let constraints: Vec<String> = edges
            .iter()
            .filter(|e| in_cycle(e))
            .map(|e| format!("{}.{}", chosen[e.child].name, e.constraint))
            .collect();
        refusals.push(format!(
            "tables {} reference each other in a cycle through NOT NULL foreign keys ({}); make one of them nullable or DEFERRABLE and fill it yourself",
            tables.join(", "),
            constraints.join(", ")
        ));
        // Still plan the cycle's columns, so every other problem shows too.
        break;
    }
    let mut out: Vec<_> = chosen
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, depth[i].unwrap_or(0), std::mem::take(&mut nulled[i])))
        .collect();
    out.sort_by_key(|(t, d, _)| (*d, t.name.clone()));
    out
}

/// Every foreign key between two chosen tables, by their indexes.
fn edges(chosen: &[&Table]) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (ci, t) in chosen.iter().enumerate() {
        for c in &t.constraints {
            let Kind::Foreign { parent, .. } = &c.kind else {
                continue;
            };
            let Some(pi) = chosen.iter().position(|p| &p.name == parent) else {
                continue;
            };
            let nullable = c
                .columns
                .iter()
                .all(|name| t.columns.iter().any(|k| &k.name == name && !k.not_null));
            edges.push(Edge {
                child: ci,
                parent: pi,
                constraint: c.name.clone(),
                nullable,
            });
        }
    }
    edges
}

/// Depth = 1 + the deepest parent; tables on a cycle stay `None`.
fn kahn(edges: &[Edge], depth: &mut [Option<usize>]) {
    depth.iter_mut().for_each(|d| *d = None);
    for _ in 0..=depth.len() {
        let mut changed = false;
        for i in 0..depth.len() {
            if depth[i].is_some() {
                continue;
            }
            let parents: Vec<Option<usize>> = edges
                .iter()
                .filter(|e| e.child == i)
                .map(|e| depth[e.parent])
                .collect();
            if parents.iter().all(Option::is_some) {
                depth[i] = Some(parents.iter().flatten().map(|d| d + 1).max().unwrap_or(0));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}
