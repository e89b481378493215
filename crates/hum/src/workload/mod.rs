//! Workloads: what one transaction does. Each prepares its statements on
//! every new connection and runs one transaction per [`Slot`] with the
//! client's seeded generator, sending all statements of a transaction at
//! once (tokio-postgres pipelines requests on one connection), so a
//! transaction costs one round trip instead of one per statement.
//!
//! A pipelined transaction is safe: statements after a failed one fail too
//! (the transaction is aborted) and its COMMIT rolls back, so a transaction
//! counts as committed only when every statement succeeded.
//!
//! [`Slot`]: crate::schedule::Slot

pub(crate) mod books;
pub(crate) mod script;
pub(crate) mod tpcb;

use std::error::Error as StdError;
use std::future::Future;

use bytes::BytesMut;
use rand_chacha::ChaCha8Rng;
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config};

use crate::client::{Conn, Session, TxError, connect};
use crate::stats::Stats;

/// A workload, generic so each keeps its own statement and state types.
pub(crate) trait Work: Send + Sync + 'static {
    /// Statements prepared on the write connection.
    type Main: Send + Sync + 'static;
    /// Statements prepared on the read connection.
    type Read: Send + Sync + 'static;
    /// Per-client state (a script's variables).
    type Client: Send + 'static;

    fn prepare_main(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<Self::Main, tokio_postgres::Error>> + Send;

    fn prepare_read(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<Self::Read, tokio_postgres::Error>> + Send;

    /// Whether clients open a connection to a read target.
    fn uses_reads(&self) -> bool {
        false
    }

    fn client_state(&self, client: u32) -> Self::Client;

    /// A statement that locks the hot row `hot` (a raw draw) picks, for
    /// long transactions; `None`: the workload has no hot rows.
    fn hot_row_lock(&self, _hot: u64) -> Option<String> {
        None
    }

    /// Runs one transaction; returns its kind (`tpcb`, `insert`, …).
    fn execute<'a>(
        &'a self,
        tx: Tx<'a, Self>,
    ) -> impl Future<Output = Result<&'static str, TxError>> + Send + 'a;
}

/// What one transaction works with.
pub(crate) struct Tx<'a, W: Work + ?Sized> {
    pub(crate) main: &'a Session<W::Main>,
    pub(crate) read: Option<&'a mut Conn<W::Read>>,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) state: &'a mut W::Client,
    /// Acknowledged writes of this transaction, for the ledger.
    pub(crate) writes: &'a mut Vec<(&'static str, i64)>,
    pub(crate) stats: &'a Stats,
}

/// Connects to the write target and prepares the workload's statements.
pub(crate) async fn open_main<W: Work>(
    work: &W,
    config: &Config,
) -> Result<Session<W::Main>, tokio_postgres::Error> {
    let client = connect(config).await?;
    let statements = work.prepare_main(&client).await?;
    Ok(Session { client, statements })
}

/// Connects to a read target and prepares the workload's reads.
pub(crate) async fn open_read<W: Work>(
    work: &W,
    config: &Config,
) -> Result<Session<W::Read>, tokio_postgres::Error> {
    let client = connect(config).await?;
    let statements = work.prepare_read(&client).await?;
    Ok(Session { client, statements })
}

/// The first error of a pipelined transaction's results, classified.
pub(crate) fn first_error<T>(
    client: &Client,
    results: impl IntoIterator<Item = Result<T, tokio_postgres::Error>>,
) -> Result<(), TxError> {
    for r in results {
        if let Err(e) = r {
            return Err(TxError::from_pg(&e, client));
        }
    }
    Ok(())
}

/// An integer parameter for whichever integer type the server inferred
/// (pgbench's tables use int4, or int8 for aid above scale 20,000).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Int(pub(crate) i64);

impl ToSql for Int {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *ty {
            Type::INT2 => i16::try_from(self.0)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(self.0)?.to_sql(ty, out),
            _ => self.0.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
    }

    to_sql_checked!();
}

/// A parameter sent as text, for any type: the server parses it as the
/// type it inferred, as pgbench's `-M prepared` does.
#[derive(Debug, Clone)]
pub(crate) struct Text(pub(crate) String);

impl ToSql for Text {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}
