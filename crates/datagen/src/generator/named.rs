//! Generators a user names in `[data.TABLE] columns`: `email`, `name`,
//! `lorem`, `{ range = [lo, hi] }`, `{ list = [...], weights = [...] }`.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{Value, decimal};

const FIRST: &[&str] = &[
    "ada", "alan", "grace", "linus", "barbara", "ken", "dennis", "margaret", "edsger", "donald", "frances",
    "john", "radia", "tim", "sophie", "guido",
];
const LAST: &[&str] = &[
    "lovelace", "turing", "hopper", "torvalds", "liskov", "thompson", "ritchie", "hamilton", "dijkstra",
    "knuth", "allen", "backus", "perlman", "berners", "wilson", "rossum",
];
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Named {
    Email,
    Name,
    Lorem,
    /// Integers in `[lo, hi]`.
    Range {
        lo: i64,
        hi: i64,
    },
    /// One of `values`, drawn with `weights` (same length, not all zero).
    List {
        values: Vec<String>,
        weights: Vec<u32>,
    },
}

impl Named {
    /// The names a lab file may use, for "unknown generator" messages.
    pub const NAMES: &'static [&'static str] = &["email", "name", "lorem", "range", "list"];

    /// A word as the lab writes it.
    pub fn word(word: &str) -> Option<Named> {
        match word {
            "email" => Some(Named::Email),
            "name" => Some(Named::Name),
            "lorem" => Some(Named::Lorem),
            _ => None,
        }
    }

    /// True when every row gets its own value (`email` carries the row
    /// number), so the column may carry a UNIQUE constraint.
    pub fn unique(&self) -> bool {
        matches!(self, Named::Email)
    }

    /// Draws one value; text goes into `scratch`.
    pub(super) fn draw(&self, rng: &mut ChaCha8Rng, index: u64, scratch: &mut Vec<u8>) -> Value {
        let pick = |rng: &mut ChaCha8Rng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        match self {
            Named::Email => {
                scratch.extend_from_slice(pick(rng, FIRST).as_bytes());
                scratch.push(b'.');
                scratch.extend_from_slice(pick(rng, LAST).as_bytes());
                decimal(scratch, index as i64);
                scratch.extend_from_slice(b"@example.com");
            }
            Named::Name => {
                scratch.extend_from_slice(pick(rng, FIRST).as_bytes());
                scratch.push(b' ');
                scratch.extend_from_slice(pick(rng, LAST).as_bytes());
            }
            Named::Lorem => {
                for i in 0..rng.random_range(3..12) {
                    if i > 0 {
                        scratch.push(b' ');
                    }
                    scratch.extend_from_slice(pick(rng, WORDS).as_bytes());
                }
            }
            Named::Range { lo, hi } => return Value::Int(rng.random_range(*lo..=*hi)),
            Named::List { values, weights } => {
                let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
                let mut draw = rng.random_range(0..total.max(1));
                let mut chosen = &values[0];
                for (v, w) in values.iter().zip(weights) {
                    if draw < u64::from(*w) {
                        chosen = v;
                        break;
                    }
                    draw -= u64::from(*w);
                }
                scratch.extend_from_slice(chosen.as_bytes());
            }
        }
        Value::Text
    }
}
