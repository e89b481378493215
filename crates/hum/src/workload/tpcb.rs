//! pgbench's TPC-B-like transaction on pgbench's tables, and `init`, which
//! creates and fills those tables the way `pgbench -i` does (same columns,
//! fill factor, rows and keys), so hum and pgbench run on each other's.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use rand::RngExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{Int, Tx, Work, first_error};
use crate::client::TxError;
use crate::error::{Error, ErrorKind, describe};

const BRANCHES: i64 = 1;
const TELLERS: i64 = 10;
const ACCOUNTS: i64 = 100_000;

pub(crate) const TABLES: [&str; 4] = [
    "pgbench_accounts",
    "pgbench_branches",
    "pgbench_history",
    "pgbench_tellers",
];

/// The workload at the scale the tables have.
pub(crate) struct Tpcb {
    scale: i64,
}

pub(crate) struct Statements {
    begin: Statement,
    update_account: Statement,
    select_account: Statement,
    update_teller: Statement,
    update_branch: Statement,
    insert_history: Statement,
    end: Statement,
}

impl Tpcb {
    /// Reads the scale from `pgbench_branches`, as pgbench does.
    pub(crate) async fn setup(client: &Client, node: &str) -> Result<Tpcb, Error> {
        let scale = scale_of(client).await.map_err(|e| {
            Error::with(
                ErrorKind::Setup,
                format!(
                    "{node}: cannot read the scale from pgbench_branches: {}",
                    describe(&e)
                ),
                e,
            )
        })?;
        match scale {
            Some(scale) if scale > 0 => Ok(Tpcb { scale }),
            _ => Err(Error::new(
                ErrorKind::Setup,
                format!(
                    "{node}: the pgbench tables are missing or empty; create them with \
                     `prodhome hum --init --scale N` (or pgbench -i)"
                ),
            )),
        }
    }
}

impl Work for Tpcb {
    type Main = Statements;
    type Read = ();
    type Client = ();

    async fn prepare_main(&self, c: &Client) -> Result<Statements, tokio_postgres::Error> {
        let r = tokio::join!(
            biased;
            c.prepare("BEGIN"),
            c.prepare("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"),
            c.prepare("SELECT abalance FROM pgbench_accounts WHERE aid = $1"),
            c.prepare("UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2"),
            c.prepare("UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2"),
            c.prepare(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
                 VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
            ),
            c.prepare("END"),
        );
        Ok(Statements {
            begin: r.0?,
            update_account: r.1?,
            select_account: r.2?,
            update_teller: r.3?,
            update_branch: r.4?,
            insert_history: r.5?,
            end: r.6?,
        })
    }

    async fn prepare_read(&self, _client: &Client) -> Result<(), tokio_postgres::Error> {
        Ok(())
    }

    fn client_state(&self, _client: u32) {}

    fn hot_row_lock(&self, hot: u64) -> Option<String> {
        // The branches are TPC-B's hottest rows.
        let bid = 1 + hot % self.scale as u64;
        Some(format!(
            "SELECT bbalance FROM pgbench_branches WHERE bid = {bid} FOR UPDATE"
        ))
    }

    async fn execute<'a>(&'a self, tx: Tx<'a, Self>) -> Result<&'static str, TxError> {
        let c = &tx.main.client;
        let s = &tx.main.statements;
        // The order of draws is pgbench's: aid, bid, tid, delta.
        let aid = tx.rng.random_range(1..=ACCOUNTS * self.scale);
        let bid = Int(tx.rng.random_range(1..=BRANCHES * self.scale));
        let tid = Int(tx.rng.random_range(1..=TELLERS * self.scale));
        let delta = Int(tx.rng.random_range(-5000..=5000));
        let a = Int(aid);
        // The parameter lists live beside the pipelined requests.
        let account: [&(dyn ToSql + Sync); 2] = [&delta, &a];
        let select: [&(dyn ToSql + Sync); 1] = [&a];
        let teller: [&(dyn ToSql + Sync); 2] = [&delta, &tid];
        let branch: [&(dyn ToSql + Sync); 2] = [&delta, &bid];
        let history: [&(dyn ToSql + Sync); 4] = [&tid, &bid, &a, &delta];
        let r = tokio::join!(
            biased;
            c.execute(&s.begin, &[]),
            c.execute(&s.update_account, &account),
            c.execute(&s.select_account, &select),
            c.execute(&s.update_teller, &teller),
            c.execute(&s.update_branch, &branch),
            c.execute(&s.insert_history, &history),
            c.execute(&s.end, &[]),
        );
        first_error(c, [r.0, r.1, r.2, r.3, r.4, r.5, r.6])?;
        tx.writes.push(("pgbench_accounts", aid));
        Ok("tpcb")
    }
}

/// The number of branches, or `None` when the table does not exist.
pub(crate) async fn scale_of(client: &Client) -> Result<Option<i64>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("select to_regclass('pgbench_branches') is not null", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let n: i64 = client
        .query_one("select count(*) from pgbench_branches", &[])
        .await?
        .get(0);
    Ok(Some(n))
}

/// Whether complete tables of `scale` are there: all four, the branch
/// count, the last account and the primary keys.
async fn complete(client: &Client, scale: i64) -> Result<bool, tokio_postgres::Error> {
    let present: i64 = client
        .query_one(
            "select count(*) from unnest($1::text[]) t where to_regclass(t) is not null",
            &[&TABLES.as_slice()],
        )
        .await?
        .get(0);
    if present != TABLES.len() as i64 || scale_of(client).await? != Some(scale) {
        return Ok(false);
    }
    let row = client
        .query_one(
            "select (select max(aid)::int8 from pgbench_accounts), \
             (select count(*) from pg_constraint where contype = 'p' and conrelid in \
              ('pgbench_accounts'::regclass, 'pgbench_branches'::regclass, 'pgbench_tellers'::regclass))",
            &[],
        )
        .await?;
    let last: Option<i64> = row.get(0);
    let keys: i64 = row.get(1);
    Ok(last == Some(ACCOUNTS * scale) && keys == 3)
}

/// One of pgbench's tables as `pgbench -i` creates it.
struct Table {
    name: &'static str,
    columns: String,
    /// The primary key's column (pgbench_history has none).
    key: Option<&'static str>,
}

/// pgbench's tables at `scale`: aid is int4 up to scale 20,000, as in pgbench.
fn definitions(scale: i64) -> [Table; 4] {
    let aid = if scale >= 20_000 { "bigint" } else { "int" };
    [
        Table {
            name: "pgbench_history",
            columns: format!("tid int, bid int, aid {aid}, delta int, mtime timestamp, filler char(22)"),
            key: None,
        },
        Table {
            name: "pgbench_tellers",
            columns: "tid int not null, bid int, tbalance int, filler char(84)".into(),
            key: Some("tid"),
        },
        Table {
            name: "pgbench_accounts",
            columns: format!("aid {aid} not null, bid int, abalance int, filler char(84)"),
            key: Some("aid"),
        },
        Table {
            name: "pgbench_branches",
            columns: "bid int not null, bbalance int, filler char(88)".into(),
            key: Some("bid"),
        },
    ]
}

/// The tables' definitions with their keys, empty and idempotent, for a
/// node that gets the rows by replication: the keys are there from the
/// start, so the subscriber finds the rows an UPDATE names by index.
pub(crate) fn schema_sql(scale: u32) -> Vec<(&'static str, String)> {
    definitions(i64::from(scale))
        .into_iter()
        .map(|t| {
            let key = t.key.map(|k| format!(", primary key ({k})")).unwrap_or_default();
            let sql = format!("create table if not exists {} ({}{key})", t.name, t.columns);
            (t.name, sql)
        })
        .collect()
}

/// Whether [`init`] will (re)create the tables rather than keep them.
pub(crate) async fn recreates(
    client: &Client,
    scale: u32,
    fresh: bool,
) -> Result<bool, tokio_postgres::Error> {
    Ok(fresh || !complete(client, i64::from(scale)).await?)
}

/// Creates and fills the tables at `scale` unless complete ones of that
/// scale exist (or always, with `fresh`, like `pgbench -i`). One
/// transaction: the tables appear whole or not at all.
pub(crate) async fn init(client: &Client, scale: u32, fresh: bool) -> Result<(), tokio_postgres::Error> {
    if !recreates(client, scale, fresh).await? {
        return Ok(());
    }
    let scale = i64::from(scale);
    // Keys come after the COPY, as in pgbench -i: loading is faster so.
    let creates: String = definitions(scale)
        .iter()
        .map(|t| {
            let fill = if t.key.is_some() {
                " with (fillfactor = 100)"
            } else {
                ""
            };
            format!("create table {} ({}){fill};\n", t.name, t.columns)
        })
        .collect();
    client
        .batch_execute(&format!(
            "begin;
             drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;
             {creates}"
        ))
        .await?;
    let filled = async {
        copy(client, "pgbench_branches", BRANCHES * scale, |buf, i| {
            put_row(buf, &[i + 1, 0]);
        })
        .await?;
        copy(client, "pgbench_tellers", TELLERS * scale, |buf, i| {
            put_row(buf, &[i + 1, i / TELLERS + 1, 0]);
        })
        .await?;
        copy(client, "pgbench_accounts", ACCOUNTS * scale, |buf, i| {
            put_row(buf, &[i + 1, i / ACCOUNTS + 1, 0]);
        })
        .await?;
        let keys: String = definitions(scale)
            .iter()
            .filter_map(|t| {
                t.key
                    .map(|k| format!("alter table {} add primary key ({k});\n", t.name))
            })
            .collect();
        client.batch_execute(&format!("{keys}commit;")).await
    }
    .await;
    if let Err(e) = filled {
        let _ = client.batch_execute("rollback").await;
        return Err(e);
    }
    // Frozen by COPY FREEZE already; this sets the visibility map and
    // statistics, as pgbench -i's vacuum step does.
    client
        .batch_execute("vacuum analyze pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history")
        .await
}

/// Streams `rows` rows into `table` with COPY … FREEZE (the table was
/// created in this transaction), in chunks of about 256 KiB.
async fn copy(
    client: &Client,
    table: &str,
    rows: i64,
    row: impl Fn(&mut BytesMut, i64),
) -> Result<(), tokio_postgres::Error> {
    let sink = client
        .copy_in::<_, Bytes>(&format!("copy {table} from stdin with (freeze on)"))
        .await?;
    futures_util::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(300 * 1024);
    for i in 0..rows {
        row(&mut buf, i);
        if buf.len() >= 256 * 1024 {
            sink.send(buf.split().freeze()).await?;
        }
    }
    if !buf.is_empty() {
        sink.send(buf.split().freeze()).await?;
    }
    sink.as_mut().finish().await.map(drop)
}

/// One COPY text row: the integers tab-separated, then an empty filler.
fn put_row(buf: &mut BytesMut, values: &[i64]) {
    let mut digits = itoa_buf();
    for v in values {
        buf.put_slice(format_int(&mut digits, *v));
        buf.put_u8(b'\t');
    }
    buf.put_u8(b'\n');
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Formats a non-negative integer without allocating (the init writes
/// millions of them).
fn format_int(buf: &mut [u8; 20], mut v: i64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_match_pgbench() {
        let mut buf = BytesMut::new();
        put_row(&mut buf, &[100_000, 1, 0]);
        put_row(&mut buf, &[7, 0]);
        assert_eq!(&buf[..], b"100000\t1\t0\t\n7\t0\t\n");
    }
}
