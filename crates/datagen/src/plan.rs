//! Catalog + request → [`FillPlan`]: which tables, how many rows, parents
//! first, and per column the generator and why. Everything the generators
//! cannot satisfy is collected and refused at once, before any write.

mod check;
mod column;
mod order;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::Error;
use crate::catalog::{Kind, Table, Type};
use crate::generator::{Gen, Named};

/// Rows per table when neither `--rows` nor `[data.TABLE] rows` says.
pub const DEFAULT_ROWS: u64 = 1000;

/// How many rows: the same count for every table, or a multiple of each
/// table's own (`[data.TABLE] rows`, else [`DEFAULT_ROWS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Count(u64),
    Scale(u64),
}

/// `[data.TABLE]` as the CLI hands it over.
#[derive(Debug, Clone, Default)]
pub struct TableOverride {
    pub rows: Option<u64>,
    pub columns: BTreeMap<String, Named>,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Table names (`t` or `schema.t`); empty: every table.
    pub tables: Vec<String>,
    pub rows: Rows,
    /// Keyed by the name the lab file uses.
    pub overrides: BTreeMap<String, TableOverride>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FillPlan {
    /// Parents before children.
    pub tables: Vec<TablePlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// `schema.table`.
    pub name: String,
    #[serde(skip)]
    pub sql: String,
    /// 0 for tables with no parent being filled; tables of one depth are
    /// filled in parallel.
    pub depth: usize,
    pub rows: u64,
    pub columns: Vec<ColumnPlan>,
    pub foreign: Vec<ForeignPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(skip)]
    pub ty: Type,
    pub generator: Gen,
    pub why: String,
}

/// A foreign key whose parent keys children draw from.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignPlan {
    pub constraint: String,
    pub parent: String,
    #[serde(skip)]
    pub parent_sql: String,
    pub parent_columns: Vec<String>,
    /// The parent columns' types: a child whose column has the same binary
    /// format copies the parent's key bytes as they are.
    #[serde(skip)]
    pub parent_types: Vec<Type>,
}

/// Resolves `name` (`t` means `public.t`, else `s.t`) among `tables`.
pub(crate) fn find<'a>(tables: &'a [Table], name: &str) -> Option<&'a Table> {
    let full = if name.contains('.') {
        name.to_string()
    } else {
        format!("public.{name}")
    };
    tables.iter().find(|t| t.name == full)
}

/// Plans `request` over the node's `tables`.
pub fn plan(tables: &[Table], request: &Request) -> Result<FillPlan, Error> {
    let mut refusals = Vec::new();
    let known = || {
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        if names.is_empty() {
            "the node has no tables: is the schema applied?".to_string()
        } else {
            format!("tables are {}", names.join(", "))
        }
    };
    let mut chosen: Vec<&Table> = Vec::new();
    for name in &request.tables {
        match find(tables, name) {
            Some(t) if !chosen.iter().any(|c| c.oid == t.oid) => chosen.push(t),
            Some(_) => {}
            None => refusals.push(format!("--table {name}: no such table on the node; {}", known())),
        }
    }
    if request.tables.is_empty() {
        chosen = tables.iter().collect();
    }
    let mut overrides: BTreeMap<String, &TableOverride> = BTreeMap::new();
    for (name, o) in &request.overrides {
        match find(tables, name) {
            Some(t) => {
                overrides.insert(t.name.clone(), o);
            }
            None => refusals.push(format!("[data.{name}]: no such table on the node; {}", known())),
        }
    }
    let order = order::order(&chosen, &mut refusals);
    let mut out = Vec::new();
    for (table, depth, nulled) in order {
        let over = overrides.get(&table.name).copied();
        let rows = match request.rows {
            Rows::Count(n) => n,
            Rows::Scale(s) => over
                .and_then(|o| o.rows)
                .unwrap_or(DEFAULT_ROWS)
                .saturating_mul(s),
        };
        let empty = TableOverride::default();
        let over = over.unwrap_or(&empty);
        unknown_columns(table, over, &mut refusals);
        let columns = column::plan_columns(table, rows, over, &nulled, &mut refusals);
        let foreign = foreign_plans(tables, table, &nulled, &mut refusals);
        out.push(TablePlan {
            name: table.name.clone(),
            sql: table.sql.clone(),
            depth,
            rows,
            columns,
            foreign,
        });
    }
    if refusals.is_empty() {
        Ok(FillPlan { tables: out })
    } else {
        Err(Error::refused(refusals))
    }
}

/// A refusal for each overridden column the table does not have.
fn unknown_columns(table: &Table, over: &TableOverride, refusals: &mut Vec<String>) {
    let unknown: Vec<&String> = over
        .columns
        .keys()
        .filter(|c| !table.columns.iter().any(|k| &k.name == *c))
        .collect();
    for c in unknown {
        refusals.push(format!(
            "[data.{}] columns.{c}: no such column; columns are {}",
            table.name,
            table
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// The table's foreign keys that are filled (not `nulled` to break a
/// cycle), each with the parent it draws keys from.
fn foreign_plans(
    tables: &[Table],
    table: &Table,
    nulled: &BTreeSet<String>,
    refusals: &mut Vec<String>,
) -> Vec<ForeignPlan> {
    let mut foreign = Vec::new();
    for c in &table.constraints {
        let Kind::Foreign {
            parent,
            parent_columns,
        } = &c.kind
        else {
            continue;
        };
        if nulled.contains(&c.name) {
            continue;
        }
        match tables.iter().find(|t| &t.name == parent) {
            Some(p) => foreign.push(ForeignPlan {
                constraint: c.name.clone(),
                parent: parent.clone(),
                parent_sql: p.sql.clone(),
                parent_columns: parent_columns.clone(),
                parent_types: parent_columns
                    .iter()
                    .map(|k| {
                        p.columns
                            .iter()
                            .find(|c| &c.name == k)
                            .map_or(Type::Unknown(k.clone()), |c| c.ty.clone())
                    })
                    .collect(),
            }),
            // prodhome's own schema and the system catalogs are not read.
            None => refusals.push(format!(
                "{}: foreign key {} references {parent}, whose keys data fill does not read; give its columns generators in [data.{}] columns",
                table.name, c.name, table.name
            )),
        }
    }
    foreign
}
