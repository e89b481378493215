//! Single-table sections: `[hum]` and `[sample]` (with `[sample.influx]` and
//! `[[sample.query]]`). Read like the named sections, one table at a time,
//! so every bad key is reported.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::{Int, NodeNames};

/// `[hum]`: the background traffic `up` starts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHum {
    pub(crate) node: Option<Spanned<String>>,
    pub(crate) workload: Option<Spanned<String>>,
    pub(crate) clients: Option<Spanned<Int>>,
    pub(crate) rate: Option<Spanned<RawRate>>,
    pub(crate) scale: Option<Spanned<Int>>,
    pub(crate) read_from: Option<Spanned<NodeNames>>,
    pub(crate) seed: Option<Spanned<Int>>,
    pub(crate) long_transactions: Option<Spanned<f64>>,
    pub(crate) disconnects: Option<Spanned<f64>>,
    pub(crate) spikes: Option<Spanned<bool>>,
}

pub(crate) const HUM_KEYS: &[&str] = &[
    "node",
    "workload",
    "clients",
    "rate",
    "scale",
    "read_from",
    "seed",
    "long_transactions",
    "disconnects",
    "spikes",
];

/// `rate = 200`, `rate = 12.5` or `rate = "max"`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawRate {
    Number(f64),
    Word(String),
}

/// `[sample]`: what is sampled how often, and where it goes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSample {
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) sinks: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) retention: Option<Spanned<String>>,
    pub(crate) influx: Option<Spanned<RawInflux>>,
    pub(crate) query: Option<Vec<Spanned<RawQuery>>>,
}

pub(crate) const SAMPLE_KEYS: &[&str] = &["interval", "sinks", "retention", "influx", "query"];

/// `[sample.influx]`: v1 takes `db`; v2 takes `org`, `bucket`, `token_env`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInflux {
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) db: Option<Spanned<String>>,
    pub(crate) org: Option<Spanned<String>>,
    pub(crate) bucket: Option<Spanned<String>>,
    pub(crate) token_env: Option<Spanned<String>>,
    /// v1: create `db` when it is missing (default true).
    pub(crate) create_database: Option<Spanned<bool>>,
}

/// One `[[sample.query]]`: a custom SQL collector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuery {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) nodes: Option<Spanned<NodeNames>>,
    pub(crate) sql: Option<Spanned<String>>,
    pub(crate) tags: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) fields: Option<Spanned<Vec<Spanned<String>>>>,
}

impl<'de> Deserialize<'de> for RawRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = RawRate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("transactions per second or \"max\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRate, E> {
                Ok(RawRate::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRate, E> {
                Ok(RawRate::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawRate, E> {
                Ok(RawRate::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRate, E> {
                Ok(RawRate::Word(v.to_string()))
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

/// One `[[chaos]]` scenario.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChaos {
    pub(crate) fault: Option<Spanned<String>>,
    pub(crate) target: Option<Spanned<String>>,
    pub(crate) targets: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "for")]
    pub(crate) duration: Option<Spanned<String>>,
    pub(crate) every: Option<Spanned<String>>,
    pub(crate) delay: Option<Spanned<String>>,
    pub(crate) jitter: Option<Spanned<String>>,
    pub(crate) bytes_per_sec: Option<Spanned<Int>>,
}

pub(crate) const CHAOS_KEYS: &[&str] = &[
    "fault",
    "target",
    "targets",
    "for",
    "every",
    "delay",
    "jitter",
    "bytes_per_sec",
];
