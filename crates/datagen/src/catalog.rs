//! Table definitions as the node has them: columns with their (domain-
//! resolved) types, identity and defaults, and every constraint with the
//! text `pg_get_constraintdef` gives it.

use std::collections::HashMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::Error;

/// One ordinary or partitioned table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    #[serde(skip)]
    pub oid: u32,
    /// `schema.table`, unquoted.
    pub name: String,
    /// The name as SQL: `"schema"."table"`.
    #[serde(skip)]
    pub sql: String,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(skip)]
    pub num: i16,
    pub not_null: bool,
    /// GENERATED … AS IDENTITY.
    pub identity: bool,
    /// GENERATED ALWAYS AS (…) STORED: never written.
    pub generated: bool,
    pub default: Option<String>,
    /// As `format_type` prints it, for messages.
    pub type_name: String,
    #[serde(skip)]
    pub ty: Type,
}

impl Column {
    /// serial/bigserial or identity: the server numbers it.
    pub fn numbered_by_server(&self) -> bool {
        self.identity || self.default.as_deref().is_some_and(|d| d.starts_with("nextval("))
    }
}

/// A column's type with domains resolved to their base.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Int2,
    Int4,
    Int8,
    Numeric {
        precision: Option<u32>,
        scale: u32,
    },
    Float4,
    Float8,
    /// text, varchar(n), char(n).
    Text {
        max: Option<u32>,
    },
    Bool,
    Date,
    Timestamp,
    Timestamptz,
    Uuid,
    Json,
    Jsonb,
    Bytea,
    Enum(Vec<String>),
    Array(Box<Type>),
    Unknown(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Constraint {
    pub name: String,
    pub kind: Kind,
    pub columns: Vec<String>,
    /// `pg_get_constraintdef`.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Primary,
    Unique,
    Foreign {
        parent: String,
        parent_columns: Vec<String>,
    },
    Check,
    /// Exclusion and constraint triggers: never satisfied by construction.
    Other,
}

const TABLES: &str = "SELECT c.oid, n.nspname::text, c.relname::text,
        format('%I.%I', n.nspname, c.relname)
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'prodhome')
    AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  ORDER BY 2, 3";

const COLUMNS: &str = "SELECT a.attrelid, a.attnum, a.attname::text, a.attnotnull,
        a.attidentity <> '', a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid),
        format_type(a.atttypid, a.atttypmod), bt.typname::text, bt.typtype::text,
        bt.oid, coalesce(et.typname::text, ''), coalesce(et.typtype::text, ''),
        coalesce(et.oid, 0::oid),
        CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END
   FROM pg_attribute a
   JOIN pg_type t ON t.oid = a.atttypid
   JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
   LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
  ORDER BY a.attrelid, a.attnum";

const CONSTRAINTS: &str = "SELECT c.conrelid, c.conname::text, c.contype::text,
        coalesce(c.conkey, '{}'), c.confrelid, coalesce(c.confkey, '{}'), pg_get_constraintdef(c.oid)
   FROM pg_constraint c WHERE c.conrelid = ANY($1) ORDER BY c.conrelid, c.conname";

/// CHECKs of domains, reported as the column's own (VALUE is the column).
const DOMAIN_CHECKS: &str = "SELECT a.attrelid, a.attname::text, c.conname::text, pg_get_constraintdef(c.oid)
   FROM pg_attribute a JOIN pg_constraint c ON c.contypid = a.atttypid
  WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND c.contype = 'c'";

/// Reads every user table of the node's database (prodhome's own excluded).
pub async fn read(client: &Client) -> Result<Vec<Table>, Error> {
    let rows = client.query(TABLES, &[]).await.map_err(|e| Error::sql(WHAT, e))?;
    let mut tables: Vec<Table> = rows
        .iter()
        .map(|r| {
            let (schema, name): (String, String) = (r.get(1), r.get(2));
            Table {
                oid: r.get(0),
                name: format!("{schema}.{name}"),
                sql: r.get(3),
                columns: Vec::new(),
                constraints: Vec::new(),
            }
        })
        .collect();
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let enums = enums(client).await?;
    let index: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    for r in client
        .query(COLUMNS, &[&oids])
        .await
        .map_err(|e| Error::sql(WHAT, e))?
    {
        tables[index[&r.get::<_, u32>(0)]]
            .columns
            .push(column(&r, &enums));
    }
    let rows = client
        .query(CONSTRAINTS, &[&oids])
        .await
        .map_err(|e| Error::sql(WHAT, e))?;
    add_constraints(&mut tables, &index, &rows);
    for r in client
        .query(DOMAIN_CHECKS, &[&oids])
        .await
        .map_err(|e| Error::sql(WHAT, e))?
    {
        let column: String = r.get(1);
        let definition: String = r.get(3);
        tables[index[&r.get::<_, u32>(0)]].constraints.push(Constraint {
            name: r.get(2),
            kind: Kind::Check,
            definition: definition.replace("VALUE", &column),
            columns: vec![column],
        });
    }
    Ok(tables)
}

/// What `read` is doing, for its errors.
const WHAT: &str = "reading the tables' definitions";

/// One row of `COLUMNS` as a column, arrays of a known element type
/// included.
fn column(r: &tokio_postgres::Row, enums: &HashMap<u32, Vec<String>>) -> Column {
    let typmod: i32 = r.get(14);
    let base = scalar(r.get(8), r.get(9), r.get(10), typmod, enums);
    let ty = match base {
        Type::Unknown(_) if !r.get::<_, String>(11).is_empty() => {
            let elem = scalar(r.get(11), r.get(12), r.get(13), -1, enums);
            Type::Array(Box::new(elem))
        }
        other => other,
    };
    Column {
        num: r.get(1),
        name: r.get(2),
        not_null: r.get(3),
        identity: r.get(4),
        generated: r.get(5),
        default: r.get(6),
        type_name: r.get(7),
        ty,
    }
}

/// The rows of `CONSTRAINTS` added to their tables, with column numbers
/// turned into names (the columns are already read).
fn add_constraints(tables: &mut [Table], index: &HashMap<u32, usize>, rows: &[tokio_postgres::Row]) {
    let names: HashMap<(u32, i16), String> = tables
        .iter()
        .flat_map(|t| t.columns.iter().map(|c| ((t.oid, c.num), c.name.clone())))
        .collect();
    let table_names: HashMap<u32, String> = tables.iter().map(|t| (t.oid, t.name.clone())).collect();
    for r in rows {
        let oid: u32 = r.get(0);
        let cols = |table: u32, nums: Vec<i16>| -> Vec<String> {
            nums.iter()
                .map(|n| {
                    names
                        .get(&(table, *n))
                        .cloned()
                        .unwrap_or_else(|| format!("#{n}"))
                })
                .collect()
        };
        let kind = match r.get::<_, String>(2).as_str() {
            "p" => Kind::Primary,
            "u" => Kind::Unique,
            "c" => Kind::Check,
            "f" => {
                let parent: u32 = r.get(4);
                Kind::Foreign {
                    parent: table_names
                        .get(&parent)
                        .cloned()
                        .unwrap_or_else(|| format!("oid {parent}")),
                    parent_columns: cols(parent, r.get(5)),
                }
            }
            _ => Kind::Other,
        };
        tables[index[&oid]].constraints.push(Constraint {
            name: r.get(1),
            kind,
            columns: cols(oid, r.get(3)),
            definition: r.get(6),
        });
    }
}

async fn enums(client: &Client) -> Result<HashMap<u32, Vec<String>>, Error> {
    let rows = client
        .query(
            "SELECT enumtypid, enumlabel::text FROM pg_enum ORDER BY enumtypid, enumsortorder",
            &[],
        )
        .await
        .map_err(|e| Error::sql("reading enum labels", e))?;
    let mut out: HashMap<u32, Vec<String>> = HashMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().push(r.get(1));
    }
    Ok(out)
}

fn scalar(name: String, typtype: String, oid: u32, typmod: i32, enums: &HashMap<u32, Vec<String>>) -> Type {
    if typtype == "e" {
        return Type::Enum(enums.get(&oid).cloned().unwrap_or_default());
    }
    let len = (typmod >= 4).then(|| (typmod - 4) as u32);
    match name.as_str() {
        "int2" => Type::Int2,
        "int4" => Type::Int4,
        "int8" => Type::Int8,
        "numeric" => match len {
            Some(m) => Type::Numeric {
                precision: Some(m >> 16),
                scale: m & 0xffff,
            },
            None => Type::Numeric {
                precision: None,
                scale: 2,
            },
        },
        "float4" => Type::Float4,
        "float8" => Type::Float8,
        "text" | "varchar" | "bpchar" | "name" | "citext" => Type::Text { max: len },
        "bool" => Type::Bool,
        "date" => Type::Date,
        "timestamp" => Type::Timestamp,
        "timestamptz" => Type::Timestamptz,
        "uuid" => Type::Uuid,
        "json" => Type::Json,
        "jsonb" => Type::Jsonb,
        "bytea" => Type::Bytea,
        _ => Type::Unknown(name),
    }
}
