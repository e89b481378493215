//! The lab file as written: serde types that mirror the TOML, with a byte
//! span on every value a later error may point at. Nothing here judges
//! values (that is `check`); this layer only rejects what serde can: unknown
//! keys and wrong types.
//!
//! serde stops at the first error, and a lab file deserves all of them. So
//! the document is parsed once into a spanned tree ([`DeTable`]), split into
//! its sections, and each section is deserialized on its own; within a
//! section, the entry an error points at is reported, dropped, and the rest
//! deserialized again (see [`read_table`]).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::Problem;

mod service;
mod single;

pub(crate) use service::{ALERT_KEYS, RawAlert, RawProbe, RawSecret, RawService, SECRET_KEYS, SERVICE_KEYS};
pub(crate) use single::{
    CHAOS_KEYS, HUM_KEYS, RawChaos, RawHum, RawInflux, RawQuery, RawRate, RawSample, SAMPLE_KEYS,
};

pub(crate) type Span = Range<usize>;

/// The top-level scalar keys. `[postgres.*]` and `[replication.*]` are read
/// section by section into [`RawDoc`], so one bad section cannot hide another.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLab {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) postgres_version: Option<Spanned<Int>>,
    pub(crate) run_as: Option<Spanned<String>>,
    pub(crate) api_port: Option<Spanned<Int>>,
    pub(crate) seed: Option<Spanned<Int>>,
    pub(crate) backend: Option<Spanned<String>>,
}

const LAB_KEYS: &[&str] = &[
    "name",
    "postgres_version",
    "run_as",
    "api_port",
    "seed",
    "backend",
];
const SECTIONS: &[&str] = &[
    "postgres",
    "replication",
    "hum",
    "sample",
    "chaos",
    "service",
    "secret",
    "alert",
    "data",
];

/// Sections that DESIGN.md promises but this version does not read yet.
/// Named specially so that a lab written for a later prodhome fails with a
/// message saying so, not a bare "unknown key".
const FUTURE_SECTIONS: &[&str] = &[];

/// One `[postgres.NAME]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub(crate) port: Option<Spanned<Int>>,
    /// Any TOML value, so that every bad setting can be reported, each at
    /// its own place, by `check`.
    pub(crate) settings: Option<Spanned<BTreeMap<Spanned<String>, Spanned<toml::Value>>>>,
    /// The machine (a Swarm node's hostname, a Kubernetes node's
    /// `kubernetes.io/hostname`) an exported lab pins this node to.
    pub(crate) host: Option<Spanned<String>>,
}

const NODE_KEYS: &[&str] = &["port", "settings", "host"];

/// One `[data.TABLE]` section: synthetic rows for one of the user's tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    pub(crate) rows: Option<Spanned<Int>>,
    /// Column → generator; any TOML value, so that `check` can say what a
    /// generator looks like at the place of each bad one.
    pub(crate) columns: Option<Spanned<BTreeMap<Spanned<String>, Spanned<toml::Value>>>>,
}

const DATA_KEYS: &[&str] = &["rows", "columns"];

/// One `[replication.NAME]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplication {
    pub(crate) publisher: Option<Spanned<String>>,
    pub(crate) subscribers: Option<Spanned<NodeNames>>,
    pub(crate) schema: Option<Spanned<String>>,
    pub(crate) tables: Option<Spanned<RawTables>>,
    pub(crate) ddl: Option<Spanned<String>>,
}

const REPLICATION_KEYS: &[&str] = &["publisher", "subscribers", "schema", "tables", "ddl"];

/// `tables = "all"` or `tables = ["a", "s.b"]`. Any string is accepted here
/// so that `check` can say what it expected in the lab's own terms.
#[derive(Debug)]
pub(crate) enum RawTables {
    Word(String),
    List(Vec<Spanned<String>>),
}

/// A list of node names. Its own type only so that a wrong type reads
/// "expected a list of node names" rather than "expected a sequence".
#[derive(Debug)]
pub(crate) struct NodeNames(pub(crate) Vec<Spanned<String>>);

/// A TOML integer. Its own type only so that a wrong type reads
/// "expected an integer" rather than "expected i64".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int(pub(crate) i64);

/// A named section (`[postgres.NAME]`, `[replication.NAME]`) as read.
#[derive(Debug)]
pub(crate) struct Section<T> {
    /// The name, spanning its place in the section header.
    pub(crate) name: Spanned<String>,
    /// `None` when the section is not a table (already reported).
    pub(crate) body: Option<T>,
    /// Keys dropped because of a problem already reported, so that `check`
    /// does not also call them missing.
    pub(crate) failed: Vec<String>,
}

/// A single-table section (`[hum]`, `[sample]`) as read.
#[derive(Debug)]
pub(crate) struct Single<T> {
    /// The section's header or key, where "missing" problems point.
    pub(crate) span: Span,
    pub(crate) body: T,
    /// Keys dropped because of a problem already reported.
    pub(crate) failed: Vec<String>,
}

/// A whole lab file as read, with the problems found so far.
#[derive(Debug, Default)]
pub(crate) struct RawDoc {
    pub(crate) lab: RawLab,
    /// Top-level keys (including `postgres`, `replication`) dropped because of
    /// a problem already reported.
    pub(crate) failed: Vec<String>,
    /// In file order.
    pub(crate) nodes: Vec<Section<RawNode>>,
    /// In file order.
    pub(crate) replications: Vec<Section<RawReplication>>,
    pub(crate) hum: Option<Single<RawHum>>,
    pub(crate) sample: Option<Single<RawSample>>,
    /// `[[chaos]]` scenarios, in file order.
    pub(crate) chaos: Vec<Single<RawChaos>>,
    /// In file order.
    pub(crate) services: Vec<Section<RawService>>,
    pub(crate) secrets: Vec<Section<RawSecret>>,
    pub(crate) alert: Option<Single<RawAlert>>,
    /// `[data.TABLE]` sections, in file order.
    pub(crate) data: Vec<Section<RawData>>,
    pub(crate) problems: Vec<Problem>,
}

/// Reads a lab file's text. A TOML syntax error is the only problem that
/// stops reading; everything else is collected in [`RawDoc::problems`].
pub(crate) fn read(source: &str) -> Result<RawDoc, Problem> {
    let root = DeTable::parse(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end();
        match source.get(span.clone()) {
            // The parser does not say which key; the span does.
            Some(key) if message == "duplicate key" && !key.is_empty() => {
                Problem::new(span, format!("duplicate key `{key}`"))
                    .help("each key and each [section] may appear only once")
            }
            // Unicode, spaces and quotes are fine inside quotes.
            _ if message.starts_with("invalid unquoted key") => Problem::new(span, message)
                .help("put a key with other characters in double quotes: [postgres.\"NAME\"]"),
            _ => Problem::new(span, message),
        }
    })?;
    let root_span = root.span();
    let mut root = root.into_inner();
    let mut doc = RawDoc::default();
    let postgres = root.remove_entry("postgres");
    doc.nodes = sections("postgres", NODE_KEYS, postgres, &mut doc);
    let replication = root.remove_entry("replication");
    doc.replications = sections("replication", REPLICATION_KEYS, replication, &mut doc);
    let hum = root.remove_entry("hum");
    doc.hum = single("hum", HUM_KEYS, hum, &mut doc);
    let sample = root.remove_entry("sample");
    doc.sample = single("sample", SAMPLE_KEYS, sample, &mut doc);
    let chaos = root.remove_entry("chaos");
    doc.chaos = array_of_tables("chaos", CHAOS_KEYS, chaos, &mut doc);
    let services = root.remove_entry("service");
    doc.services = sections("service", SERVICE_KEYS, services, &mut doc);
    let secrets = root.remove_entry("secret");
    doc.secrets = sections("secret", SECRET_KEYS, secrets, &mut doc);
    let alert = root.remove_entry("alert");
    doc.alert = single("alert", ALERT_KEYS, alert, &mut doc);
    let data = root.remove_entry("data");
    doc.data = sections("data", DATA_KEYS, data, &mut doc);
    let shape = Shape::Top;
    let mut failed = Vec::new();
    doc.lab = read_table(root, root_span, &shape, &mut doc.problems, &mut failed);
    doc.failed.extend(failed);
    Ok(doc)
}

/// Reads every `[KIND.NAME]` section under the `KIND` key, in file order.
fn sections<T: DeserializeOwned + Default>(
    kind: &'static str,
    keys: &'static [&'static str],
    entry: Option<(Spanned<Cow<'_>>, Spanned<DeValue<'_>>)>,
    doc: &mut RawDoc,
) -> Vec<Section<T>> {
    let Some((_, value)) = entry else {
        return Vec::new();
    };
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        doc.failed.push(kind.to_string());
        doc.problems.push(
            Problem::new(span, format!("{kind}: expected [{kind}.NAME] sections"))
                .help(format!("write one [{kind}.NAME] section per {}", singular(kind))),
        );
        return Vec::new();
    };
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
        .into_iter()
        .map(|(key, value)| {
            let name = Spanned::new(key.span(), key.get_ref().to_string());
            let path = format!("{kind}.{}", name.get_ref());
            let mut failed = Vec::new();
            let value_span = value.span();
            let body = match value.into_inner() {
                DeValue::Table(table) => {
                    let shape = Shape::Section { path, keys };
                    Some(read_table(
                        table,
                        value_span,
                        &shape,
                        &mut doc.problems,
                        &mut failed,
                    ))
                }
                other => {
                    let found = other.type_str();
                    doc.problems.push(
                        Problem::new(
                            value_span,
                            format!("{path}: expected a [{path}] section, found {found}"),
                        )
                        .help(format!(
                            "each {} is a section of its own, [{kind}.NAME], with its keys inside",
                            singular(kind)
                        )),
                    );
                    None
                }
            };
            Section { name, body, failed }
        })
        .collect()
}

/// Reads the one `[KIND]` table under the `KIND` key.
fn single<T: DeserializeOwned + Default>(
    kind: &'static str,
    keys: &'static [&'static str],
    entry: Option<(Spanned<Cow<'_>>, Spanned<DeValue<'_>>)>,
    doc: &mut RawDoc,
) -> Option<Single<T>> {
    let (key, value) = entry?;
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        doc.failed.push(kind.to_string());
        doc.problems.push(
            Problem::new(span, format!("{kind}: expected a [{kind}] section")).help(format!(
                "write [{kind}] on a line of its own, with its keys below it"
            )),
        );
        return None;
    };
    let shape = Shape::Section {
        path: kind.to_string(),
        keys,
    };
    let mut failed = Vec::new();
    let body = read_table(table, span, &shape, &mut doc.problems, &mut failed);
    Some(Single {
        span: key.span(),
        body,
        failed,
    })
}

/// Reads every `[[KIND]]` table under the `KIND` key, in file order.
fn array_of_tables<T: DeserializeOwned + Default>(
    kind: &'static str,
    keys: &'static [&'static str],
    entry: Option<(Spanned<Cow<'_>>, Spanned<DeValue<'_>>)>,
    doc: &mut RawDoc,
) -> Vec<Single<T>> {
    let Some((_, value)) = entry else {
        return Vec::new();
    };
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        doc.failed.push(kind.to_string());
        doc.problems.push(
            Problem::new(span, format!("{kind}: expected [[{kind}]] entries"))
                .help(format!("write each entry as a [[{kind}]] table of its own")),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let item_span = item.span();
        let path = format!("{kind}[{i}]");
        let DeValue::Table(table) = item.into_inner() else {
            doc.problems.push(Problem::new(
                item_span,
                format!("{path}: expected a [[{kind}]] table"),
            ));
            continue;
        };
        let shape = Shape::Section { path, keys };
        let mut failed = Vec::new();
        let body = read_table(table, item_span.clone(), &shape, &mut doc.problems, &mut failed);
        out.push(Single {
            span: item_span,
            body,
            failed,
        });
    }
    out
}

type Cow<'i> = std::borrow::Cow<'i, str>;

fn singular(kind: &str) -> &'static str {
    match kind {
        "postgres" => "node",
        "service" => "service",
        "secret" => "secret",
        "data" => "table",
        _ => "replication",
    }
}

/// What a table is, for messages about its keys.
enum Shape {
    Top,
    Section {
        /// `postgres.publisher`
        path: String,
        keys: &'static [&'static str],
    },
}

impl Shape {
    fn key_path(&self, key: &str) -> String {
        match self {
            Shape::Top => key.to_string(),
            Shape::Section { path, .. } => format!("{path}.{key}"),
        }
    }

    fn keys(&self) -> Vec<&'static str> {
        match self {
            Shape::Top => LAB_KEYS.iter().chain(SECTIONS).copied().collect(),
            Shape::Section { keys, .. } => keys.to_vec(),
        }
    }

    fn accepts(&self) -> String {
        match self {
            Shape::Top => format!(
                "the top level accepts {}, [postgres.NAME], [replication.NAME], [service.NAME], [secret.NAME], [data.TABLE], [hum], [sample], [alert] and [[chaos]]",
                LAB_KEYS.join(", ")
            ),
            Shape::Section { path, keys } => format!("[{path}] accepts {}", keys.join(", ")),
        }
    }

    fn unknown_key(&self, key: &str, span: Span) -> Problem {
        if matches!(self, Shape::Top) && FUTURE_SECTIONS.contains(&key) {
            return Problem::new(
                span,
                format!("`{key}` is not supported by this version of prodhome"),
            )
            .help(format!("remove [{key}]; {}", self.accepts()));
        }
        let problem = Problem::new(
            span,
            format!("{}: unknown key; {}", self.key_path(key), self.accepts()),
        );
        match closest(key, &self.keys()) {
            Some(near) => problem.help(format!("did you mean `{near}`?")),
            None => problem,
        }
    }
}

/// Deserializes `T` from `table`. Each error serde reports is pinned to the
/// entry it points into, reported, and that entry dropped before trying
/// again; so every unknown key and wrong type in the table is reported, and
/// the rest of the table is still read. An error that points at no entry
/// (there should be none, since every field is optional) gives up on the
/// table and yields `T::default()`.
fn read_table<T: DeserializeOwned + Default>(
    mut table: DeTable<'_>,
    span: Span,
    shape: &Shape,
    problems: &mut Vec<Problem>,
    failed: &mut Vec<String>,
) -> T {
    // Each round drops an entry, so this ends; the bound is belt and braces.
    for _ in 0..=table.len() {
        let de = toml::de::Deserializer::from(Spanned::new(span.clone(), table.clone()));
        let error = match T::deserialize(de) {
            Ok(value) => return value,
            Err(error) => error,
        };
        let at = error.span().unwrap_or(span.clone());
        let hit = table.iter().find_map(|(k, v)| {
            let on_key = k.span() == at;
            let in_value = v.span().contains(&at.start) || v.span() == at;
            (on_key || in_value).then(|| (k.get_ref().to_string(), on_key))
        });
        let Some((key, on_key)) = hit else {
            problems.push(Problem::new(at, error.message().to_string()));
            break;
        };
        problems.push(if on_key {
            shape.unknown_key(&key, at)
        } else {
            Problem::new(
                at,
                format!("{}: {}", shape.key_path(&key), reword(error.message())),
            )
        });
        failed.push(key.clone());
        table.remove(key.as_str());
    }
    T::default()
}

/// serde says "invalid type: string \"x\", expected an integer"; a lab file's
/// reader wants what was expected first.
fn reword(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            return format!("expected {}, found {}", toml_word(expected), toml_word(found));
        }
    }
    message.to_string()
}

/// serde's words for TOML's arrays and tables, in TOML's words.
fn toml_word(serde: &str) -> &str {
    match serde {
        "a map" | "map" => "a table",
        "a sequence" | "sequence" => "a list",
        other => other,
    }
}

/// The candidate closest to `key` by edit distance, if it is plausibly a typo.
pub(crate) fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(key, c), *c))
        .filter(|&(d, c)| d <= 2 && d < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| too_big(v))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| too_big(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| too_big(v))
            }
        }
        /// Not "invalid value: integer, expected an integer": say why.
        fn too_big<E: de::Error>(v: impl fmt::Display) -> E {
            E::custom(format!(
                "expected an integer from {} to {}, found {v}",
                i64::MIN,
                i64::MAX
            ))
        }
        deserializer.deserialize_i64(IntVisitor)
    }
}

impl<'de> Deserialize<'de> for NodeNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = NodeNames;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of node names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeNames, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element()? {
                    names.push(name);
                }
                Ok(NodeNames(names))
            }
        }
        deserializer.deserialize_seq(NamesVisitor)
    }
}

impl<'de> Deserialize<'de> for RawTables {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TablesVisitor;
        impl<'de> Visitor<'de> for TablesVisitor {
            type Value = RawTables;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of table names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTables, E> {
                Ok(RawTables::Word(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawTables, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element()? {
                    names.push(name);
                }
                Ok(RawTables::List(names))
            }
        }
        deserializer.deserialize_any(TablesVisitor)
    }
}

#[cfg(test)]
mod tests;
