//! Generators a user names in `[data.TABLE] columns`: `email`, `name`,
//! `lorem`, `{ range = [lo, hi] }`, `{ list = [...], weights = [...] }`.

use bytes::BytesMut;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::escape;

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

    pub(super) fn write(&self, rng: &mut ChaCha8Rng, index: u64, out: &mut BytesMut) {
        let pick = |rng: &mut ChaCha8Rng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        match self {
            Named::Email => {
                let text = format!("{}.{}{index}@example.com", pick(rng, FIRST), pick(rng, LAST));
                out.extend_from_slice(text.as_bytes());
            }
            Named::Name => {
                let text = format!("{} {}", pick(rng, FIRST), pick(rng, LAST));
                out.extend_from_slice(text.as_bytes());
            }
            Named::Lorem => {
                for i in 0..rng.random_range(3..12) {
                    if i > 0 {
                        out.extend_from_slice(b" ");
                    }
                    out.extend_from_slice(pick(rng, WORDS).as_bytes());
                }
            }
            Named::Range { lo, hi } => {
                out.extend_from_slice(rng.random_range(*lo..=*hi).to_string().as_bytes())
            }
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
                escape(chosen, out);
            }
        }
    }
}
