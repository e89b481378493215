//! The lab parser on hostile input: a bounded, seeded mutation run over the
//! seed lab, a lab using every section, the example lab and every bad
//! fixture, plus arbitrary bytes. Whatever the text, `lab::parse` returns
//! (no panic), and every error points into the file (line and column within
//! the text) and says something.
//!
//! `LAB_FUZZ_CASES` (default 3000) and `LAB_FUZZ_SEED` (default 1) make a
//! longer or different run: `LAB_FUZZ_CASES=200000 cargo test -p lab --test
//! lab -- fuzz`. A failure prints its case's seed and text.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FILE: &str = "fuzz.toml";

/// A lab with every section, so mutations reach every checker.
const EVERYTHING: &str = r#"name = "shop"
postgres_version = 15
seed = 7
run_as = "postgres"
api_port = 24000

[postgres.main]
port = 24001
settings = { max_connections = 50, work_mem = "8MB", "auto_explain.log_min_duration" = 10, fsync = true }

[postgres.replica_a]
[postgres.replica_b]
[postgres.spare]

[replication.orders]
publisher = "main"
subscribers = ["replica_a", "replica_b"]
schema = "shop.sql"
tables = ["orders", "public.items"]

[replication.audit]
publisher = "replica_a"
subscribers = ["replica_b"]
tables = ["audit.events"]

[replication.everything]
publisher = "replica_b"
subscribers = ["spare"]
tables = "all"

[hum]
node = "main"
workload = "tpcb"
clients = 4
rate = 12.5
scale = 2
read_from = ["replica_a"]
seed = 3
long_transactions = 0.01
disconnects = 0.001
spikes = true

[sample]
interval = "500ms"
sinks = ["embedded", "influx", "prometheus"]
retention = "2h"
influx = { url = "http://127.0.0.1:8086", org = "o", bucket = "b", token_env = "INFLUX_TOKEN" }

[[sample.query]]
name = "queue"
nodes = ["main"]
sql = "select count(*) as n, 'x' as kind from pg_stat_activity"
tags = ["kind"]
fields = ["n"]

[secret.api_token]
length = 24
alphabet = "hex"

[service.api]
command = ["./api", "--port", "8080"]
env = { DATABASE_URL = "${postgres.main.url}", TOKEN = "${secret.api_token}" }
workdir = "."
depends_on = { main = "ready" }
ready = { tcp = 8080, interval = "200ms", timeout = "1s", threshold = 2 }
live = { http = "http://127.0.0.1:8080/health", interval = "1s", threshold = 3 }
restart = "always"
max_restarts = 3
stop_signal = "INT"
stop_timeout = "5s"

[service.worker]
command = ["./worker"]
depends_on = { api = "started", replica_a = "healthy" }
ready = { exec = ["true"] }
restart = "no"

[alert]
command = ["sh", "-c", "cat >> alerts.log"]
webhook = "http://127.0.0.1:9000/hook"
down_after = "10s"
lag_bytes = 10_000_000
min_interval = "1m"

[[chaos]]
fault = "latency"
target = "main->replica_a"
for = "5s"
every = "20s..60s"
delay = "200ms"
jitter = "10ms"

[[chaos]]
fault = "bandwidth"
targets = ["clients->main", "main->replica_b"]
for = "3s"
every = "30s"
bytes_per_sec = 1024

[[chaos]]
fault = "kill"
target = "replica_b"
every = "1m..2m"
"#;

/// Tokens a mutation may put anywhere: the grammar's own, limits, and text
/// that has tripped parsers elsewhere.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "\n",
    "#",
    "\\",
    "\\u0000",
    "0",
    "-1",
    "-0",
    "+1",
    "1.5",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "-inf",
    "true",
    "1979-05-27T07:32:00Z",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "0x7fffffff",
    "0o777",
    "0b1",
    "1_000",
    "65535",
    "65536",
    "1023",
    "\"\"",
    "[]",
    "{}",
    "\"all\"",
    "\"max\"",
    "\"1s\"",
    "\"0s\"",
    "\"1s..0s\"",
    "\"99999999999999999999h\"",
    "\"..\"",
    "\"->\"",
    "\"a->\"",
    "\"clients->\"",
    "\"${\"",
    "\"${postgres.main.url}\"",
    "\"${secret.x}\"",
    "\"${}\"",
    "\"/\"",
    "\"..\"",
    "\"/dev/null\"",
    "\"é\"",
    "\"🦀\"",
    "\"\u{202e}\"",
    "é",
    "🦀",
    "\u{feff}",
    "\u{0}",
    "\r",
    "\t",
    "[postgres.x]",
    "[replication.x]",
    "[service.x]",
    "[secret.x]",
    "[hum]",
    "[sample]",
    "[alert]",
    "[[chaos]]",
    "[[sample.query]]",
    "[sample.influx]",
    "postgres",
    "replication",
    "service",
    "depends_on",
    "subscribers",
    "publisher",
    "schema",
    "tables",
    "port",
    "settings",
    "command",
    "env",
    "ready",
    "live",
    "tcp",
    "http",
    "exec",
    "length",
    "alphabet",
    "fault",
    "target",
    "targets",
    "every",
    "for",
    "name",
    "node",
    "workload",
    "rate",
    "sinks",
];

/// How many labs at the start of [`corpus`] are valid.
const VALID: usize = 3;

fn corpus() -> Vec<String> {
    let mut corpus = vec![
        lab::init::SEED_TOML.to_string(),
        EVERYTHING.to_string(),
        include_str!("../../../examples/dispatch/prodhome.toml").to_string(),
    ];
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&bad)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    fixtures.sort();
    corpus.extend(fixtures.iter().map(|p| std::fs::read_to_string(p).unwrap()));
    corpus
}

/// Byte offsets of char boundaries in `text`, so edits keep it UTF-8 where
/// they mean to.
fn boundary(text: &str, rng: &mut ChaCha8Rng) -> usize {
    let mut at = rng.random_range(0..=text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn range(text: &str, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let (a, b) = (boundary(text, rng), boundary(text, rng));
    (a.min(b), a.max(b))
}

/// Splits into tokens: runs of word characters, runs of spaces, and single
/// other characters.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let class = |c: char| {
        if c.is_alphanumeric() || c == '_' {
            0
        } else if c == ' ' {
            1
        } else {
            2
        }
    };
    let mut previous = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if i > start && (k == 2 || Some(k) != previous) {
            out.push(&text[start..i]);
            start = i;
        }
        previous = Some(k);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// One mutation of `text`; `other` is another corpus entry for splices.
fn mutate(text: &str, other: &str, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..8) {
        // Flip a byte: may leave invalid UTF-8, read lossily as a file would be.
        0 => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => {
            let (a, b) = range(text, rng);
            format!("{}{}", &text[..a], &text[b..])
        }
        2 => {
            let (a, b) = range(text, rng);
            format!("{}{}", &text[..b], &text[a..])
        }
        3 => {
            let (a, b) = (boundary(text, rng), boundary(other, rng));
            format!("{}{}", &text[..a], &other[b..])
        }
        4 => {
            let mut t = tokens(text);
            if t.len() > 1 {
                let (i, j) = (rng.random_range(0..t.len()), rng.random_range(0..t.len()));
                t.swap(i, j);
            }
            t.concat()
        }
        5 | 6 => {
            let mut t = tokens(text);
            let token = TOKENS[rng.random_range(0..TOKENS.len())];
            if t.is_empty() || rng.random_bool(0.3) {
                let at = rng.random_range(0..=t.len());
                t.insert(at, token);
            } else {
                let at = rng.random_range(0..t.len());
                t[at] = token;
            }
            t.concat()
        }
        // A number grown huge or negative.
        _ => {
            let digits: Vec<usize> = text
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            if digits.is_empty() {
                return text.to_string();
            }
            let at = digits[rng.random_range(0..digits.len())];
            let insert = [
                "99999999999999999999",
                "-",
                "0000",
                "1e30",
                "18446744073709551615",
            ];
            let with = insert[rng.random_range(0..insert.len())];
            format!("{}{with}{}", &text[..at], &text[at..])
        }
    }
}

fn arbitrary(rng: &mut ChaCha8Rng) -> String {
    let len = rng.random_range(0..256);
    let bytes: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Why `text` breaks the parser's promises, if it does; `Ok(valid)` when it
/// keeps them.
fn judge(text: &str, dir: &Path) -> Result<bool, String> {
    let result = catch_unwind(AssertUnwindSafe(|| lab::parse(text, Path::new(FILE), dir)));
    let errors = match result {
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(format!("panicked: {what}"));
        }
        Ok(Ok(_)) => return Ok(true),
        Ok(Err(errors)) => errors,
    };
    if errors.0.is_empty() {
        return Err("an Err with no errors in it".into());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    for error in &errors.0 {
        let Some(at) = &error.location else {
            return Err(format!("no location: {error}"));
        };
        let line_ok = at.file == Path::new(FILE) && at.line >= 1 && at.line <= lines.len();
        if !line_ok || at.column < 1 || at.column > lines[at.line - 1].chars().count() + 1 {
            return Err(format!("location {at} is outside the text: {error}"));
        }
        if error.message.trim().is_empty() {
            return Err(format!("{at}: an empty message"));
        }
    }
    Ok(false)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: expected a number"))
        })
        .unwrap_or(default)
}

#[test]
fn fuzz_mutated_labs_never_panic_and_every_error_is_located() {
    let cases = env_number("LAB_FUZZ_CASES", 3000);
    let seed = env_number("LAB_FUZZ_SEED", 1);
    let dir = tempfile::tempdir().unwrap();
    // One schema.sql serves the seed lab and the dispatch example: each
    // names its own tables, and the check reads them from the file.
    let schema = [
        lab::init::SEED_SCHEMA,
        include_str!("../../../examples/dispatch/schema.sql"),
    ];
    std::fs::write(dir.path().join("schema.sql"), schema.join("\n")).unwrap();
    // The tables EVERYTHING's `tables = [...]` names: the check reads them from its schema.
    std::fs::write(
        dir.path().join("shop.sql"),
        "create table orders (id bigint primary key);\ncreate table items (id bigint primary key);\n",
    )
    .unwrap();
    let corpus = corpus();
    for (i, valid) in corpus[..VALID].iter().enumerate() {
        if let Err(errors) = lab::parse(valid, Path::new(FILE), dir.path()) {
            panic!("corpus[{i}] must be a valid lab:\n{errors}");
        }
    }

    // The panic hook stays: it is shared with the tests running beside this
    // one, and a caught panic printing its message is no harm.
    let (mut failures, mut valid, mut located) = (Vec::new(), 0, 0);
    for case in 0..cases {
        // One stream per case: a failure is reproduced from its own seed.
        let case_seed = seed.wrapping_mul(1_000_003).wrapping_add(case);
        let mut rng = ChaCha8Rng::seed_from_u64(case_seed);
        let text = if rng.random_bool(0.05) {
            arbitrary(&mut rng)
        } else {
            // Half the time a valid lab (the first VALID entries), so one
            // mutation often leaves it valid or breaks one check only.
            let pick = |rng: &mut ChaCha8Rng| match rng.random_bool(0.5) {
                true => rng.random_range(0..VALID),
                false => rng.random_range(0..corpus.len()),
            };
            let base = &corpus[pick(&mut rng)];
            let other = &corpus[pick(&mut rng)];
            let mut text = base.clone();
            let rounds = if rng.random_bool(0.5) {
                1
            } else {
                rng.random_range(2..=4)
            };
            for _ in 0..rounds {
                text = mutate(&text, other, &mut rng);
            }
            text
        };
        match judge(&text, dir.path()) {
            Ok(true) => valid += 1,
            Ok(false) => located += 1,
            Err(why) => {
                failures.push(format!("case seed {case_seed}: {why}\n--- input\n{text:?}"));
                if failures.len() >= 5 {
                    break;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("fuzz: {cases} cases, {valid} valid, {located} with located errors");
    // Mutations that only ever broke the syntax, or never broke anything,
    // would leave the checkers untested.
    assert!(
        valid * 50 >= cases && located * 2 >= cases,
        "{valid} valid, {located} invalid of {cases}"
    );
}

#[test]
fn fuzz_mutations_change_the_text() {
    // Guards the harness itself: a mutator that returned its input would
    // make the test above pass without testing anything.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let changed = (0..200)
        .filter(|_| mutate(EVERYTHING, lab::init::SEED_TOML, &mut rng) != EVERYTHING)
        .count();
    assert!(changed > 150, "only {changed} of 200 mutations changed the text");
}
