//! Checking `[data.TABLE]`: rows in range and every column generator one
//! `data fill` knows, each bad one reported where it is written. The table
//! and column names are resolved later, against the node's catalog.

use toml::{Spanned, Value};

use super::Checker;
use crate::Problem;
use crate::plan::{DataGenerator, DataPlan};
use crate::raw::{RawData, Section};

const MAX_ROWS: i64 = 10_000_000_000;
const GENERATORS: &str =
    "\"email\", \"name\", \"lorem\", { range = [LO, HI] } or { list = [\"a\", \"b\"], weights = [3, 1] }";

impl Checker<'_> {
    pub(super) fn data(&mut self, section: &Section<RawData>) -> Option<DataPlan> {
        let table = section.name.get_ref().clone();
        let raw = section.body.as_ref()?;
        let path = format!("data.{table}");
        let rows = match &raw.rows {
            None => Some(None),
            Some(r) => self
                .int_in(&format!("{path}.rows"), Some(r), 0..=MAX_ROWS, 0)
                .map(|n| Some(n as u64)),
        };
        let mut columns = Vec::new();
        let mut ok = true;
        for (name, value) in raw.columns.iter().flat_map(|c| c.get_ref().iter()) {
            let at = format!("{path}.columns.{}", name.get_ref());
            match self.generator(&at, value) {
                Some(g) => columns.push((name.get_ref().clone(), g)),
                None => ok = false,
            }
        }
        Some(DataPlan {
            table,
            rows: rows?,
            columns: ok.then_some(columns)?,
        })
    }

    fn generator(&mut self, at: &str, value: &Spanned<Value>) -> Option<DataGenerator> {
        let bad = |this: &mut Self, what: String| {
            this.problems.push(
                Problem::new(value.span(), format!("{at}: {what}"))
                    .help(format!("a column generator is {GENERATORS}")),
            );
            None
        };
        match value.get_ref() {
            Value::String(word) => match word.as_str() {
                "email" => Some(DataGenerator::Email),
                "name" => Some(DataGenerator::Name),
                "lorem" => Some(DataGenerator::Lorem),
                other => {
                    let near = crate::raw::closest(other, &["email", "name", "lorem"]);
                    let mut problem =
                        Problem::new(value.span(), format!("{at}: unknown generator {other:?}"));
                    problem = match near {
                        Some(n) => problem.help(format!(
                            "did you mean \"{n}\"? a column generator is {GENERATORS}"
                        )),
                        None => problem.help(format!("a column generator is {GENERATORS}")),
                    };
                    self.problems.push(problem);
                    None
                }
            },
            Value::Table(t) if t.len() == 1 && t.contains_key("range") => match t["range"].as_array() {
                Some(a) if a.len() == 2 => match (a[0].as_integer(), a[1].as_integer()) {
                    (Some(lo), Some(hi)) if lo <= hi => Some(DataGenerator::Range(lo, hi)),
                    (Some(lo), Some(hi)) => bad(
                        self,
                        format!("range [{lo}, {hi}] is empty: the first must not exceed the second"),
                    ),
                    _ => bad(self, "range expects two integers, [LO, HI]".into()),
                },
                _ => bad(self, "range expects two integers, [LO, HI]".into()),
            },
            Value::Table(t) if t.contains_key("list") && t.keys().all(|k| k == "list" || k == "weights") => {
                self.list(at, value, t)
            }
            Value::Table(t) => {
                let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                bad(self, format!("unknown generator {{ {} = … }}", keys.join(", ")))
            }
            other => bad(self, format!("expected a generator, found {}", other.type_str())),
        }
    }

    fn list(&mut self, at: &str, value: &Spanned<Value>, t: &toml::Table) -> Option<DataGenerator> {
        let problem = |this: &mut Self, what: String, help: &str| {
            this.problems
                .push(Problem::new(value.span(), format!("{at}: {what}")).help(help.to_string()));
            None
        };
        let values: Option<Vec<String>> = t["list"].as_array().and_then(|a| {
            a.iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Integer(i) => Some(i.to_string()),
                    Value::Float(f) => Some(f.to_string()),
                    Value::Boolean(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect()
        });
        let values = match values {
            Some(v) if !v.is_empty() => v,
            _ => {
                return problem(
                    self,
                    "list expects a non-empty list of strings or numbers".into(),
                    "list = [\"new\", \"paid\"]",
                );
            }
        };
        let weights: Vec<u32> = match t.get("weights") {
            None => vec![1; values.len()],
            Some(w) => {
                let parsed: Option<Vec<u32>> = w.as_array().and_then(|a| {
                    a.iter()
                        .map(|x| x.as_integer().and_then(|i| u32::try_from(i).ok()))
                        .collect()
                });
                match parsed {
                    Some(p) if p.len() == values.len() && p.iter().any(|x| *x > 0) => p,
                    Some(p) if p.len() != values.len() => {
                        return problem(
                            self,
                            format!("{} weights for {} values", p.len(), values.len()),
                            "give one weight per value, or leave weights out for equal ones",
                        );
                    }
                    _ => {
                        return problem(
                            self,
                            "weights expects whole numbers from 0, not all 0".into(),
                            "weights = [3, 1] draws the first value three times as often",
                        );
                    }
                }
            }
        };
        Some(DataGenerator::List { values, weights })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::plan::{DataGenerator, DataPlan};

    #[test]
    fn a_data_section_becomes_its_plan_with_generators_in_file_order() {
        let source = r#"name = "shop"
[postgres.primary]
[data."sales.orders"]
rows = 5000
columns = { note = "lorem", qty = { range = [1, 10] }, status = { list = ["new", 2], weights = [3, 1] } }
[data.customers]
"#;
        let plan = crate::parse(source, Path::new("lab.toml"), Path::new(".")).unwrap();
        assert_eq!(
            plan.data,
            vec![
                DataPlan {
                    table: "sales.orders".into(),
                    rows: Some(5000),
                    columns: vec![
                        ("note".into(), DataGenerator::Lorem),
                        ("qty".into(), DataGenerator::Range(1, 10)),
                        (
                            "status".into(),
                            DataGenerator::List {
                                values: vec!["new".into(), "2".into()],
                                weights: vec![3, 1]
                            }
                        ),
                    ],
                },
                DataPlan {
                    table: "customers".into(),
                    rows: None,
                    columns: Vec::new()
                },
            ]
        );
    }
}
