//! Checking `[replication.NAME]` sections: names resolved against the
//! nodes, the schema file read, the table list judged.

use toml::Spanned;

use super::{Checker, NAME_MAX, is_identifier};
use crate::Problem;
use crate::plan::{Ddl, ReplicationPlan, SchemaFile, Tables};
use crate::raw::{NodeNames, RawReplication, RawTables, Section, closest};

/// Postgres truncates identifiers longer than this (NAMEDATALEN - 1).
const TABLE_NAME_MAX: usize = 63;

impl Checker<'_> {
    pub(super) fn replication(&mut self, section: &Section<RawReplication>) -> Option<ReplicationPlan> {
        let path = format!("replication.{}", section.name.get_ref());
        let name = self.name(&path, "replication name", &section.name, NAME_MAX);
        let raw = section.body.as_ref()?;

        let publisher = match &raw.publisher {
            Some(publisher) => self.node_ref(&format!("{path}.publisher"), publisher),
            None => {
                let help = "add `publisher = \"NODE\"`: the node whose tables are replicated";
                self.missing(section, "publisher", help);
                None
            }
        };
        let subscribers = match &raw.subscribers {
            Some(list) => self.subscribers(&path, list, raw.publisher.as_ref()),
            None => {
                let help = "add `subscribers = [\"NODE\", …]`: the nodes that receive the tables";
                self.missing(section, "subscribers", help);
                None
            }
        };
        let schema = match &raw.schema {
            Some(schema) => self.schema(&path, schema).map(Some),
            None => Some(None),
        };
        // Without a schema file the tables may come from anywhere (a
        // migration tool, a restore): only a file's tables can be checked.
        let created = match (&schema, &raw.schema) {
            (Some(Some((_, created))), Some(written)) => Some(Created {
                file: written.get_ref(),
                tables: created,
            }),
            _ => None,
        };
        let tables = match &raw.tables {
            Some(tables) => self.tables(&path, tables, created),
            None => Some(Tables::All),
        };
        let ddl = self.ddl(&path, raw.ddl.as_ref());
        let schema = schema.map(|s| s.map(|(file, _)| file));
        Some(ReplicationPlan {
            name: name?,
            publisher: publisher?,
            subscribers: subscribers?,
            schema: schema?,
            tables: tables?,
            ddl: ddl?,
        })
    }

    fn ddl(&mut self, path: &str, ddl: Option<&Spanned<String>>) -> Option<Ddl> {
        let Some(ddl) = ddl else {
            return Some(Ddl::Follow);
        };
        match ddl.get_ref().as_str() {
            "follow" => Some(Ddl::Follow),
            "manual" => Some(Ddl::Manual),
            other => {
                let message = format!("{path}.ddl: expected \"follow\" or \"manual\", found {other:?}");
                let help = match closest(other, &["follow", "manual"]) {
                    Some(near) => format!("did you mean {near:?}?"),
                    None => {
                        "\"follow\" applies the publisher's DDL to subscribers; \"manual\" leaves them alone"
                            .to_string()
                    }
                };
                self.problems.push(Problem::new(ddl.span(), message).help(help));
                None
            }
        }
    }

    /// A required key that is absent, unless it was dropped because of a
    /// problem already reported.
    fn missing(&mut self, section: &Section<RawReplication>, key: &str, help: &str) {
        if section.failed.iter().any(|k| k == key) {
            return;
        }
        let path = format!("replication.{}", section.name.get_ref());
        let message = format!("{path}: missing `{key}`; {}", self.nodes_are());
        self.problems
            .push(Problem::new(section.name.span(), message).help(help));
    }

    /// A reference to a `[postgres.NAME]`.
    pub(super) fn node_ref(&mut self, path: &str, name: &Spanned<String>) -> Option<String> {
        let wanted = name.get_ref();
        if self.node_names.contains(wanted) {
            return Some(wanted.clone());
        }
        let message = format!("{path}: no postgres node {wanted:?}; {}", self.nodes_are());
        let names: Vec<&str> = self.node_names.iter().map(String::as_str).collect();
        let help = match closest(wanted, &names) {
            Some(near) => format!("did you mean {near:?}?"),
            None => format!("add a [postgres.{wanted}] section, or name an existing node"),
        };
        self.problems.push(Problem::new(name.span(), message).help(help));
        None
    }

    pub(super) fn nodes_are(&self) -> String {
        if self.node_names.is_empty() {
            "there are no postgres nodes".to_string()
        } else {
            format!("nodes are {}", self.node_names.join(", "))
        }
    }

    fn subscribers(
        &mut self,
        path: &str,
        list: &Spanned<NodeNames>,
        publisher: Option<&Spanned<String>>,
    ) -> Option<Vec<String>> {
        if list.get_ref().0.is_empty() {
            self.problems.push(
                Problem::new(
                    list.span(),
                    format!("{path}.subscribers: expected at least one node, found none"),
                )
                .help(format!(
                    "list the nodes that receive the tables; {}",
                    self.nodes_are()
                )),
            );
            return None;
        }
        let mut subscribers = Vec::new();
        let mut ok = true;
        for (i, subscriber) in list.get_ref().0.iter().enumerate() {
            let item = format!("{path}.subscribers[{i}]");
            let wanted = subscriber.get_ref();
            if let Some(first) = list.get_ref().0[..i].iter().position(|s| s.get_ref() == wanted) {
                self.problems.push(
                    Problem::new(
                        subscriber.span(),
                        format!("{item}: {wanted:?} is listed twice (first as subscribers[{first}])"),
                    )
                    .help("list each subscriber once"),
                );
                ok = false;
            } else if publisher.is_some_and(|p| p.get_ref() == wanted) {
                self.problems.push(
                    Problem::new(
                        subscriber.span(),
                        format!("{item}: {wanted:?} is this replication's publisher"),
                    )
                    .help("a node cannot subscribe to itself; list other nodes"),
                );
                ok = false;
            } else if let Some(name) = self.node_ref(&item, subscriber) {
                subscribers.push(name);
            } else {
                ok = false;
            }
        }
        ok.then_some(subscribers)
    }

    /// The schema file, read and split (a quote that never ends is a
    /// problem now, not when a node runs it), with the tables it creates.
    fn schema(&mut self, path: &str, schema: &Spanned<String>) -> Option<(SchemaFile, Vec<String>)> {
        let written = schema.get_ref();
        let problem = |message: String| {
            Problem::new(schema.span(), format!("{path}.schema: {message}"))
                .help("the path is relative to the lab file's directory")
        };
        if written.is_empty() {
            self.problems
                .push(problem("expected the path of an SQL file, found \"\"".into()));
            return None;
        }
        let resolved = self.inputs.dir.join(written);
        let bytes = match (self.inputs.read)(&resolved) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.problems
                    .push(problem(format!("cannot read {written:?}: {error}")));
                return None;
            }
        };
        let Ok(sql) = String::from_utf8(bytes) else {
            self.problems
                .push(problem(format!("{written:?} is not UTF-8 text")));
            return None;
        };
        let created = match sqlscript::split(&sql) {
            Ok(statements) => sqlscript::created_tables(&statements),
            Err(e) => {
                self.problems.push(
                    Problem::new(schema.span(), format!("{path}.schema: {written}:{e}")).help(e.help()),
                );
                return None;
            }
        };
        Some((SchemaFile { path: resolved, sql }, created))
    }

    fn tables(
        &mut self,
        path: &str,
        tables: &Spanned<RawTables>,
        created: Option<Created<'_>>,
    ) -> Option<Tables> {
        let path = format!("{path}.tables");
        let list = match tables.get_ref() {
            RawTables::Word(word) if word == "all" => return Some(Tables::All),
            RawTables::Word(word) => {
                self.problems.push(
                    Problem::new(
                        tables.span(),
                        format!("{path}: expected \"all\" or a list of table names, found {word:?}"),
                    )
                    .help(format!("for one table write tables = [{word:?}]")),
                );
                return None;
            }
            RawTables::List(list) => list,
        };
        if list.is_empty() {
            self.problems.push(
                Problem::new(
                    tables.span(),
                    format!("{path}: expected at least one table name, found none"),
                )
                .help("list the tables to replicate, or write tables = \"all\""),
            );
            return None;
        }
        let mut ok = true;
        for (i, table) in list.iter().enumerate() {
            let item = format!("{path}[{i}]");
            let wanted = table.get_ref();
            let problem = if !is_table_name(wanted) {
                let message = format!("{item}: invalid table name {wanted:?}");
                Problem::new(table.span(), message).help(format!(
                    "use NAME or SCHEMA.NAME, each 1 to {TABLE_NAME_MAX} lowercase letters, \
                     digits and _, starting with a letter or _"
                ))
            } else if let Some(first) = list[..i].iter().position(|t| t.get_ref() == wanted) {
                Problem::new(
                    table.span(),
                    format!("{item}: {wanted:?} is listed twice (first as tables[{first}])"),
                )
                .help("list each table once")
            } else if let Some(missing) = created.as_ref().and_then(|c| c.missing(&item, table)) {
                missing
            } else {
                continue;
            };
            self.problems.push(problem);
            ok = false;
        }
        ok.then(|| Tables::List(list.iter().map(|t| t.get_ref().clone()).collect()))
    }
}

/// The tables a replication's schema file creates, as `schema.table`.
struct Created<'a> {
    file: &'a str,
    tables: &'a [String],
}

impl Created<'_> {
    /// A problem when the file does not create `table` (as the lab writes it:
    /// `name` for `public.name`).
    fn missing(&self, item: &str, table: &Spanned<String>) -> Option<Problem> {
        let wanted = table.get_ref();
        let full = if wanted.contains('.') {
            wanted.clone()
        } else {
            format!("public.{wanted}")
        };
        if self.tables.contains(&full) {
            return None;
        }
        let names: Vec<&str> = self
            .tables
            .iter()
            .map(|t| t.strip_prefix("public.").unwrap_or(t))
            .collect();
        let file = self.file;
        let creates = match names.len() {
            0 => "it creates no tables".to_string(),
            n if n <= 10 => format!("it creates {}", names.join(", ")),
            n => format!("it creates {} and {} more", names[..10].join(", "), n - 10),
        };
        let message = format!("{item}: the schema file {file:?} creates no table {wanted:?}; {creates}");
        let help = match closest(wanted, &names) {
            Some(near) => format!("did you mean {near:?}?"),
            None => format!("create the table in {file}, or take it out of the list"),
        };
        Some(Problem::new(table.span(), message).help(help))
    }
}

/// `table` or `schema.table`.
fn is_table_name(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = parts.next().is_some_and(|p| is_identifier(p, TABLE_NAME_MAX));
    match parts.next() {
        None => ok,
        Some(table) => ok && is_identifier(table, TABLE_NAME_MAX) && parts.next().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(is_table_name("books"));
        assert!(is_table_name("shop.books"));
        assert!(is_table_name(&"t".repeat(TABLE_NAME_MAX)));
        for bad in [
            "",
            "a.",
            ".a",
            "a.b.c",
            "Books",
            "a b",
            &"t".repeat(TABLE_NAME_MAX + 1),
        ] {
            assert!(!is_table_name(bad), "{bad:?}");
        }
    }
}
