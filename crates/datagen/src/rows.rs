//! One table's rows, encoded straight into the COPY buffer: a [`Layout`]
//! (the columns COPY writes and the format, chosen once per table) and a
//! per-batch [`Rows`] writer holding every column's and foreign key's
//! seeded stream. No value goes through a `String`: text lands in one
//! reused scratch buffer, then in the COPY bytes.

use bytes::{BufMut, BytesMut};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::Error;
use crate::encode::{self, Enc};
use crate::generator::{self, Gen, Value};
use crate::plan::TablePlan;

/// Each foreign key's parent keys, in key order: per parent row, per key
/// column, the value's bytes (text, or the parent type's binary format).
pub(crate) type Keys = Vec<Vec<Vec<u8>>>;

/// COPY's format, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyFormat {
    /// Binary when every column written has a binary encoding, else text.
    #[default]
    Auto,
    Text,
}

/// The columns COPY writes, in order, and whether it writes binary.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) fields: Vec<Field>,
    pub(crate) binary: bool,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    generator: Gen,
    /// The binary format (only read when the layout is binary).
    enc: Enc,
    /// (foreign key, position in it, one child per parent).
    foreign: Option<(usize, usize, bool)>,
}

impl Layout {
    /// Every column but those the server fills; binary when `format`
    /// allows and every one of them has a binary encoding.
    pub(crate) fn new(table: &TablePlan, format: CopyFormat) -> Result<Layout, Error> {
        let mut binary = format == CopyFormat::Auto;
        let mut fields = Vec::new();
        for c in table.columns.iter().filter(|c| c.generator != Gen::ServerDefault) {
            let foreign = match &c.generator {
                Gen::Foreign { constraint, position } | Gen::ForeignUnique { constraint, position } => {
                    let fk = table.foreign.iter().position(|f| &f.constraint == constraint);
                    let fk = fk.ok_or_else(|| {
                        Error::other(format!("{}: foreign key {constraint} is not planned", table.name))
                    })?;
                    let parent = encode::type_enc(&table.foreign[fk].parent_types[*position]);
                    binary &= parent.is_some() && parent == encode::type_enc(&c.ty);
                    let one_each = matches!(c.generator, Gen::ForeignUnique { .. });
                    Some((fk, *position, one_each))
                }
                _ => None,
            };
            let enc = encode::column_enc(&c.generator, &c.ty);
            binary &= enc.is_some();
            fields.push(Field {
                name: c.name.clone(),
                generator: c.generator.clone(),
                enc: enc.unwrap_or(Enc::Text),
                foreign,
            });
        }
        if fields.is_empty() {
            return Err(Error::other(format!(
                "{}: every column is filled by the server (identity, serial or generated); nothing for COPY to write — give a column a generator in [data.{}] columns",
                table.name, table.name
            )));
        }
        Ok(Layout { fields, binary })
    }

    /// `"binary"` or `"text"`, for the summary.
    pub(crate) fn format_name(&self) -> &'static str {
        if self.binary { "binary" } else { "text" }
    }
}

/// One batch's row writer: a stream per column and per foreign key.
pub(crate) struct Rows<'a> {
    layout: &'a Layout,
    columns: Vec<ChaCha8Rng>,
    foreign: Vec<ChaCha8Rng>,
    picks: Vec<usize>,
    parents: &'a [Keys],
    scratch: Vec<u8>,
    element: Vec<u8>,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(
        table: &TablePlan,
        layout: &'a Layout,
        parents: &'a [Keys],
        seed: u64,
        batch: u64,
    ) -> Rows<'a> {
        Rows {
            layout,
            columns: layout
                .fields
                .iter()
                .map(|f| generator::stream(seed, &table.name, &f.name, batch))
                .collect(),
            foreign: table
                .foreign
                .iter()
                .map(|f| generator::stream(seed, &table.name, &f.constraint, batch))
                .collect(),
            picks: vec![0; table.foreign.len()],
            parents,
            scratch: Vec::with_capacity(256),
            element: Vec::with_capacity(64),
        }
    }

    /// Appends row `index` (global: it numbers keys) to `out`.
    pub(crate) fn write(&mut self, index: u64, out: &mut BytesMut) {
        // Every column of one foreign key takes the same parent row.
        for (i, rng) in self.foreign.iter_mut().enumerate() {
            self.picks[i] = generator::skewed(rng, self.parents[i].len());
        }
        let binary = self.layout.binary;
        if binary {
            out.put_i16(self.layout.fields.len() as i16);
        }
        for (n, (f, rng)) in self.layout.fields.iter().zip(&mut self.columns).enumerate() {
            if !binary && n > 0 {
                out.put_u8(b'\t');
            }
            if let Some((fk, position, one_each)) = f.foreign {
                let keys = &self.parents[fk];
                let row = if one_each {
                    (index as usize).min(keys.len() - 1)
                } else {
                    self.picks[fk]
                };
                let key = &keys[row][position];
                if binary {
                    encode::raw(key, out);
                } else {
                    encode::escape(key, out);
                }
                continue;
            }
            if let Gen::Array { element } = &f.generator {
                array_text(element, rng, index, (&mut self.scratch, &mut self.element), out);
                continue;
            }
            self.scratch.clear();
            let v = generator::draw(&f.generator, rng, index, &mut self.scratch);
            if binary {
                encode::binary(v, f.enc, &self.scratch, out);
            } else {
                encode::text(v, &self.scratch, out);
            }
        }
        if !binary {
            out.put_u8(b'\n');
        }
    }
}

/// An array of 0 to 4 elements in text format: `{"a","b"}`, each element
/// quoted and escaped for the array, then for COPY.
fn array_text(
    element: &Gen,
    rng: &mut ChaCha8Rng,
    index: u64,
    (scratch, quoted): (&mut Vec<u8>, &mut Vec<u8>),
    out: &mut BytesMut,
) {
    let len = rng.random_range(0..5);
    out.put_u8(b'{');
    for i in 0..len {
        if i > 0 {
            out.put_u8(b',');
        }
        scratch.clear();
        let v = generator::draw(element, rng, index, scratch);
        out.put_u8(b'"');
        if matches!(v, Value::Text | Value::Json) {
            quoted.clear();
            for &b in scratch.iter() {
                if b == b'"' || b == b'\\' {
                    quoted.push(b'\\');
                }
                quoted.push(b);
            }
            encode::escape(quoted, out);
        } else {
            encode::text(v, scratch, out);
        }
        out.put_u8(b'"');
    }
    out.put_u8(b'}');
}

/// A SQL identifier, always quoted (the catalog gives names as they are).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
