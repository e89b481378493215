use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A field's value. Its type must stay the same for a given measurement and
/// field name across every write: InfluxDB fixes a field's type on first
/// write and rejects a change, so producers pick one type per field and keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    I64(i64),
    F64(f64),
    Bool(bool),
    Str(String),
}

/// One sample, in InfluxDB's data model: a measurement, tags (indexed
/// strings: `node` is always one), fields (the values) and a timestamp in
/// nanoseconds since the epoch. Producers (sampler, hum) make them; the store
/// fans them out to sinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, FieldValue>,
    pub ts_ns: i64,
}

impl Point {
    /// A point with no tags or fields yet, stamped `ts_ns`.
    pub fn new(measurement: impl Into<String>, ts_ns: i64) -> Self {
        Point {
            measurement: measurement.into(),
            tags: BTreeMap::new(),
            fields: BTreeMap::new(),
            ts_ns,
        }
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    pub fn field(mut self, key: impl Into<String>, value: FieldValue) -> Self {
        self.fields.insert(key.into(), value);
        self
    }

    pub fn int(self, key: impl Into<String>, value: i64) -> Self {
        self.field(key, FieldValue::I64(value))
    }

    pub fn float(self, key: impl Into<String>, value: f64) -> Self {
        self.field(key, FieldValue::F64(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_keeps_tags_and_typed_fields() {
        let p = Point::new("locks", 42)
            .tag("node", "publisher")
            .int("waiting", 3)
            .float("oldest_wait_s", 1.5);
        assert_eq!(p.tags["node"], "publisher");
        assert_eq!(p.fields["waiting"], FieldValue::I64(3));
        assert_eq!(p.fields["oldest_wait_s"], FieldValue::F64(1.5));
        assert_eq!(p.ts_ns, 42);
    }
}
