//! Per column: the generator and why. Keys first (which column carries a
//! UNIQUE/PK), then CHECK bounds, then the type.

use std::collections::{BTreeMap, BTreeSet};

use super::check::{self, Cond};
use super::{ColumnPlan, TableOverride};
use crate::catalog::{Column, Kind, Table, Type};
use crate::generator::Gen;

/// Non-key integers and numerics land in `[1, SPAN]` unless a CHECK says.
const SPAN: i64 = 100_000;

struct Ctx<'a> {
    table: &'a Table,
    rows: u64,
    refusals: &'a mut Vec<String>,
}

pub(super) fn plan_columns(
    table: &Table,
    rows: u64,
    over: &TableOverride,
    nulled: &BTreeSet<String>,
    refusals: &mut Vec<String>,
) -> Vec<ColumnPlan> {
    let mut cx = Ctx {
        table,
        rows,
        refusals,
    };
    let conds = checks(&mut cx, over);
    let foreign = foreign_columns(table);
    let (unique, foreign_unique) = keys(&mut cx, over, &foreign);
    let mut out = Vec::new();
    for col in &table.columns {
        let (generator, why) = if col.generated {
            (
                Gen::ServerDefault,
                "generated column: the server computes it".to_string(),
            )
        } else if let Some(named) = over.columns.get(&col.name) {
            (
                Gen::Named(named.clone()),
                format!("[data.{}] columns.{}", table.name, col.name),
            )
        } else if let Some((constraint, position, parent)) = foreign.get(&col.name) {
            if nulled.contains(constraint) {
                (
                    Gen::Null,
                    format!("NULL: breaks the foreign-key cycle at {constraint}"),
                )
            } else if foreign_unique.contains(constraint) {
                let why = format!("one key of {parent} each ({constraint}, unique)");
                (
                    Gen::ForeignUnique {
                        constraint: constraint.clone(),
                        position: *position,
                    },
                    why,
                )
            } else {
                let why = format!("a key of {parent} ({constraint}), skewed: the first parents are hot");
                (
                    Gen::Foreign {
                        constraint: constraint.clone(),
                        position: *position,
                    },
                    why,
                )
            }
        } else if col.numbered_by_server() {
            (
                Gen::ServerDefault,
                "identity/serial: the server numbers it".to_string(),
            )
        } else {
            let conds = conds.get(&col.name).map(Vec::as_slice).unwrap_or(&[]);
            match typed(&mut cx, col, &col.ty, conds, unique.contains(&col.name)) {
                Some(g) => g,
                None => continue,
            }
        };
        out.push(ColumnPlan {
            name: col.name.clone(),
            type_name: col.type_name.clone(),
            ty: col.ty.clone(),
            generator,
            why,
        });
    }
    out
}

/// Conditions per column from the CHECKs it can read; refuses the others
/// unless the user gave every column they touch a generator.
fn checks(cx: &mut Ctx<'_>, over: &TableOverride) -> BTreeMap<String, Vec<Cond>> {
    let mut out: BTreeMap<String, Vec<Cond>> = BTreeMap::new();
    let t = cx.table;
    for c in &t.constraints {
        let covered = !c.columns.is_empty() && c.columns.iter().all(|k| over.columns.contains_key(k));
        match c.kind {
            Kind::Check if covered => {}
            Kind::Check => match check::parse(&c.definition) {
                Some(conds) if conds.iter().all(|(k, _)| t.columns.iter().any(|x| &x.name == k)) => {
                    for (k, cond) in conds {
                        out.entry(k).or_default().push(cond);
                    }
                }
                _ => cx.refusals.push(format!(
                    "{}: CHECK constraint {} `{}` on column(s) {} is not a range or IN list prodhome can satisfy; give {} a generator in [data.{}] columns",
                    t.name, c.name, c.definition, c.columns.join(", "), if c.columns.len() == 1 { "it" } else { "them" }, t.name
                )),
            },
            Kind::Other if !covered => cx.refusals.push(format!(
                "{}: constraint {} `{}` (exclusion) cannot be satisfied by construction; give its columns generators in [data.{}] columns",
                t.name, c.name, c.definition, t.name
            )),
            _ => {}
        }
    }
    out
}

/// Column → (FK constraint, position in it, parent table).
fn foreign_columns(t: &Table) -> BTreeMap<String, (String, usize, String)> {
    let mut out = BTreeMap::new();
    for c in &t.constraints {
        if let Kind::Foreign { parent, .. } = &c.kind {
            for (i, col) in c.columns.iter().enumerate() {
                out.entry(col.clone())
                    .or_insert((c.name.clone(), i, parent.clone()));
            }
        }
    }
    out
}

/// Which columns must be unique, and which FKs one child per parent.
fn keys(
    cx: &mut Ctx<'_>,
    over: &TableOverride,
    foreign: &BTreeMap<String, (String, usize, String)>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let t = cx.table;
    let (mut unique, mut foreign_unique) = (BTreeSet::new(), BTreeSet::new());
    let column = |name: &str| t.columns.iter().find(|c| c.name == name);
    for c in t
        .constraints
        .iter()
        .filter(|c| matches!(c.kind, Kind::Primary | Kind::Unique))
    {
        if c.columns
            .iter()
            .any(|k| column(k).is_some_and(Column::numbered_by_server))
        {
            continue;
        }
        let same_fk = t.constraints.iter().find(|f| {
            matches!(f.kind, Kind::Foreign { .. }) && {
                let (a, b): (BTreeSet<_>, BTreeSet<_>) =
                    (f.columns.iter().collect(), c.columns.iter().collect());
                a == b
            }
        });
        if let Some(f) = same_fk {
            foreign_unique.insert(f.name.clone());
            continue;
        }
        if c.columns
            .iter()
            .any(|k| over.columns.get(k).is_some_and(|n| n.unique()))
        {
            continue;
        }
        let pick = c.columns.iter().find(|k| {
            !foreign.contains_key(*k)
                && !over.columns.contains_key(*k)
                && column(k).is_some_and(|c| !c.generated)
        });
        match pick {
            Some(k) => {
                unique.insert(k.clone());
            }
            None => cx.refusals.push(format!(
                "{}: {} {} on ({}) needs distinct combinations of foreign keys or overridden columns, which prodhome cannot guarantee; add a column of its own to the key or fill the table yourself",
                t.name, if c.kind == Kind::Primary { "primary key" } else { "unique constraint" }, c.name, c.columns.join(", ")
            )),
        }
    }
    (unique, foreign_unique)
}

/// What a generator is made of: the generator and why it was chosen.
type Chosen = Option<(Gen, String)>;

const WHY_UNIQUE: &str = "unique: numbered by row, so no duplicates";

/// The generator for a column's type within its CHECK bounds.
fn typed(cx: &mut Ctx<'_>, col: &Column, ty: &Type, conds: &[Cond], unique: bool) -> Chosen {
    let values = conds.iter().rev().find_map(|c| match c {
        Cond::In(v) => Some(v.clone()),
        _ => None,
    });
    if let Some(values) = values {
        return in_list(cx, col, values, unique);
    }
    let bounded = conds.iter().any(|c| matches!(c, Cond::Min(..) | Cond::Max(..)));
    match ty {
        Type::Int2 | Type::Int4 | Type::Int8 => integer(cx, col, ty, conds, unique, bounded),
        Type::Numeric { precision, scale } => numeric(cx, col, (*precision, *scale), conds, unique, bounded),
        Type::Float4 | Type::Float8 => float(cx, col, conds, unique),
        _ if bounded => refuse(
            cx,
            col,
            format!(
                "a range CHECK on {}, which prodhome only reads for numbers",
                col.type_name
            ),
        ),
        Type::Text { max } => text(cx, col, *max, unique),
        Type::Array(_) if unique => refuse(cx, col, "a unique array".into()),
        Type::Array(elem) => array(cx, col, elem),
        _ => match unbounded(ty, unique) {
            Ok(chosen) => Some(chosen),
            Err(what) => refuse(cx, col, what),
        },
    }
}

/// Records why `col` gets no generator; always `None`.
fn refuse(cx: &mut Ctx<'_>, col: &Column, what: String) -> Chosen {
    let t = &cx.table.name;
    // The constraints that bind the column, so the message names them.
    let names: Vec<&str> = cx
        .table
        .constraints
        .iter()
        .filter(|c| {
            matches!(c.kind, Kind::Check | Kind::Primary | Kind::Unique) && c.columns.contains(&col.name)
        })
        .map(|c| c.name.as_str())
        .collect();
    let named = match names.as_slice() {
        [] => String::new(),
        [one] => format!(" (constraint {one})"),
        many => format!(" (constraints {})", many.join(", ")),
    };
    cx.refusals.push(format!(
        "{t}.{}: {what}{named}; give it a generator in [data.{t}] columns",
        col.name
    ));
    None
}

/// One of a CHECK's IN list, if there are values enough.
fn in_list(cx: &mut Ctx<'_>, col: &Column, values: Vec<String>, unique: bool) -> Chosen {
    if unique && cx.rows > values.len() as u64 {
        let what = format!(
            "unique, but its CHECK allows only {} values for {} rows",
            values.len(),
            cx.rows
        );
        return refuse(cx, col, what);
    }
    Some((Gen::Choice { values }, "one of its CHECK's IN list".into()))
}

fn integer(cx: &mut Ctx<'_>, col: &Column, ty: &Type, conds: &[Cond], unique: bool, bounded: bool) -> Chosen {
    let max = match ty {
        Type::Int2 => i16::MAX as i64,
        Type::Int4 => i32::MAX as i64,
        _ => i64::MAX,
    };
    // A key is numbered by row: only the type (or a CHECK) bounds it,
    // not the span non-key values are drawn from.
    let default_hi = if unique { max } else { SPAN.min(max) };
    let (lo, hi) = int_bounds(conds, 1, default_hi, -max, max);
    if lo > hi {
        return refuse(cx, col, "its CHECK constraints leave no value".into());
    }
    if !unique {
        let why = if bounded {
            "uniform within its CHECK"
        } else {
            "uniform"
        };
        return Some((Gen::Int { lo, hi }, why.to_string()));
    }
    if (hi - lo) as u128 + 1 < u128::from(cx.rows) {
        let what = format!(
            "unique, but its type or CHECK allow only {} values for {} rows",
            hi - lo + 1,
            cx.rows
        );
        return refuse(cx, col, what);
    }
    Some((Gen::Sequence { lo }, WHY_UNIQUE.to_string()))
}

fn numeric(
    cx: &mut Ctx<'_>,
    col: &Column,
    (precision, scale): (Option<u32>, u32),
    conds: &[Cond],
    unique: bool,
    bounded: bool,
) -> Chosen {
    let p = precision.unwrap_or(18).min(18);
    let scale = scale.min(p);
    let max_units = 10i64.pow(p) - 1;
    let f = 10f64.powi(scale as i32);
    let scaled: Vec<Cond> = conds
        .iter()
        .map(|c| match c {
            Cond::Min(v, i) => Cond::Min(v * f, *i),
            Cond::Max(v, i) => Cond::Max(v * f, *i),
            o => o.clone(),
        })
        .collect();
    let default_hi = (SPAN as f64 * f).min(max_units as f64) as i64;
    let (lo, hi) = int_bounds(&scaled, 1, default_hi, -max_units, max_units);
    if lo > hi {
        return refuse(cx, col, "its CHECK constraints leave no value".into());
    }
    if !unique {
        let why = format!(
            "uniform, {scale} decimal places{}",
            if bounded { ", within its CHECK" } else { "" }
        );
        return Some((Gen::Numeric { lo, hi, scale }, why));
    }
    // Whole numbers lo/f, lo/f + 1, …: scaled back for the sequence.
    let first = (lo as f64 / f).ceil() as i64;
    let last = (hi as f64 / f).floor() as i64;
    if last < first || (last - first) as u128 + 1 < u128::from(cx.rows) {
        let what = format!(
            "unique, but numeric({p},{scale}) and its CHECK allow too few whole values for {} rows",
            cx.rows
        );
        return refuse(cx, col, what);
    }
    Some((Gen::Sequence { lo: first }, WHY_UNIQUE.to_string()))
}

fn float(cx: &mut Ctx<'_>, col: &Column, conds: &[Cond], unique: bool) -> Chosen {
    let lo = conds
        .iter()
        .find_map(|c| if let Cond::Min(v, _) = c { Some(*v) } else { None });
    let hi = conds
        .iter()
        .find_map(|c| if let Cond::Max(v, _) = c { Some(*v) } else { None });
    let lo = lo.unwrap_or(0.0);
    let hi = hi.unwrap_or(lo + 1000.0);
    // Exclusive bounds: stay a hair inside.
    let (lo, hi) = (lo + (hi - lo) * 1e-9, hi - (hi - lo) * 1e-9);
    if unique || lo >= hi {
        return refuse(cx, col, "a unique or empty-range floating point column".into());
    }
    Some((Gen::Float { lo, hi }, "uniform".into()))
}

fn text(cx: &mut Ctx<'_>, col: &Column, max: Option<u32>, unique: bool) -> Chosen {
    let max = max.unwrap_or(u32::MAX);
    if !unique {
        let g = Gen::Text {
            min: max.min(4),
            max: max.min(16),
        };
        return Some((g, "random letters within its length".into()));
    }
    let digits = base36_digits(cx.rows.saturating_sub(1));
    if digits > max {
        let what = format!(
            "unique in {} characters, too short for {} distinct rows",
            max, cx.rows
        );
        return refuse(cx, col, what);
    }
    Some((
        Gen::UniqueText { max },
        "unique: the row number in base 36".into(),
    ))
}

fn array(cx: &mut Ctx<'_>, col: &Column, elem: &Type) -> Chosen {
    match elem {
        Type::Array(_) | Type::Unknown(_) | Type::Json | Type::Jsonb | Type::Bytea => refuse(
            cx,
            col,
            format!("an array of a type prodhome cannot generate ({})", col.type_name),
        ),
        _ => {
            let (element, _) = typed(cx, col, elem, &[], false)?;
            Some((
                Gen::Array {
                    element: Box::new(element),
                },
                "0 to 4 elements".into(),
            ))
        }
    }
}

/// The generator of a type no CHECK bounds, or what stops one.
fn unbounded(ty: &Type, unique: bool) -> Result<(Gen, String), String> {
    let (g, why) = match ty {
        Type::Bool if unique => return Err("a unique boolean".into()),
        Type::Bool => (Gen::Bool, "true or false"),
        Type::Date if unique => (Gen::UniqueDate, "unique: one day per row from 2000-01-01"),
        Type::Date => (Gen::Date { span: 9131 }, "a day in 2000–2024"),
        Type::Timestamp | Type::Timestamptz if unique => return Err("a unique timestamp".into()),
        Type::Timestamp => (Gen::Timestamp { tz: false }, "a moment in 2000–2024"),
        Type::Timestamptz => (Gen::Timestamp { tz: true }, "a moment in 2000–2024, UTC"),
        Type::Uuid if unique => (Gen::UniqueUuid, "unique: random bits around the row number"),
        Type::Uuid => (Gen::Uuid, "random version 4"),
        Type::Json | Type::Jsonb if unique => return Err("a unique json column".into()),
        Type::Json | Type::Jsonb => (Gen::Json, "a small object {n, tag, ok}"),
        Type::Bytea => (Gen::Bytea, "4 to 31 random bytes"),
        Type::Enum(labels) if unique => return Err(format!("a unique enum with {} labels", labels.len())),
        Type::Enum(labels) if labels.is_empty() => return Err("an enum with no labels".into()),
        Type::Enum(labels) => (
            Gen::Choice {
                values: labels.clone(),
            },
            "one of the enum's labels",
        ),
        Type::Unknown(name) => return Err(format!("type {name} is not one prodhome can generate")),
        // Numbers, text and arrays are chosen in `typed`.
        other => return Err(format!("type {other:?} is not one prodhome can generate")),
    };
    Ok((g, why.to_string()))
}

/// `[lo, hi]` from Min/Max conditions, defaults where absent, within the
/// type's `[min, max]`.
fn int_bounds(conds: &[Cond], default_lo: i64, default_hi: i64, min: i64, max: i64) -> (i64, i64) {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    for c in conds {
        match *c {
            Cond::Min(v, inclusive) => {
                let b = if inclusive { v.ceil() } else { v.floor() + 1.0 };
                lo = Some(lo.map_or(b as i64, |l| l.max(b as i64)));
            }
            Cond::Max(v, inclusive) => {
                let b = if inclusive { v.floor() } else { v.ceil() - 1.0 };
                hi = Some(hi.map_or(b as i64, |h| h.min(b as i64)));
            }
            _ => {}
        }
    }
    let (lo, hi) = match (lo, hi) {
        (Some(l), Some(h)) => (l, h),
        (Some(l), None) => (l, l.saturating_add(default_hi - default_lo)),
        (None, Some(h)) => (
            h.saturating_sub(default_hi - default_lo).max(default_lo.min(h)),
            h,
        ),
        (None, None) => (default_lo, default_hi),
    };
    (lo.max(min), hi.min(max))
}

fn base36_digits(mut n: u64) -> u32 {
    let mut d = 1;
    while n >= 36 {
        n /= 36;
        d += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Constraint;

    /// pgbench_accounts' shape: an int primary key and a million rows.
    fn accounts() -> Table {
        let column = |name: &str| Column {
            name: name.into(),
            num: 1,
            not_null: true,
            identity: false,
            generated: false,
            default: None,
            type_name: "integer".into(),
            ty: Type::Int4,
        };
        Table {
            oid: 1,
            name: "public.accounts".into(),
            sql: "\"public\".\"accounts\"".into(),
            columns: vec![column("aid"), column("bid")],
            constraints: vec![Constraint {
                name: "accounts_pkey".into(),
                kind: Kind::Primary,
                columns: vec!["aid".into()],
                definition: "PRIMARY KEY (aid)".into(),
            }],
        }
    }

    /// Regression: a key was held to the 100,000-value span of non-key
    /// integers, so a million-row fill of an int key was refused.
    #[test]
    fn an_int_key_takes_as_many_rows_as_its_type_allows() {
        let mut refusals = Vec::new();
        let plan = plan_columns(
            &accounts(),
            1_000_000,
            &TableOverride::default(),
            &BTreeSet::new(),
            &mut refusals,
        );
        assert!(refusals.is_empty(), "{refusals:?}");
        assert!(
            matches!(plan[0].generator, Gen::Sequence { lo: 1 }),
            "{:?}",
            plan[0]
        );
        assert!(
            matches!(plan[1].generator, Gen::Int { lo: 1, hi: SPAN }),
            "{:?}",
            plan[1]
        );
    }
}
