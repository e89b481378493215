//! A custom script as the workload: one run of the script per transaction,
//! its SQL prepared once per connection and sent pipelined up to each
//! `\sleep` (see [`crate::script`]).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{Text, Tx, Work, first_error};
use crate::client::TxError;
use crate::error::{Error, ErrorKind, describe};
use crate::script::expr::{Value, eval};
use crate::script::{Amount, CLIENT_ID, Command, SCALE, Script};

pub(crate) struct ScriptWork {
    script: Script,
    scale: i64,
}

impl ScriptWork {
    /// Prepares every statement once on `client`, so a statement the server
    /// rejects is reported at its line before the run starts.
    pub(crate) async fn setup(script: Script, path: &Path, client: &Client) -> Result<ScriptWork, Error> {
        for command in &script.commands {
            if let Command::Sql {
                sql, line, column, ..
            } = command
                && let Err(e) = client.prepare(sql).await
            {
                return Err(Error::with(
                    ErrorKind::Script,
                    format!(
                        "{}:{line}:{column}: the server rejects this statement: {}",
                        path.display(),
                        describe(&e)
                    ),
                    e,
                ));
            }
        }
        // :scale is the pgbench tables' scale when they exist, else 1.
        let scale = super::tpcb::scale_of(client)
            .await
            .ok()
            .flatten()
            .filter(|&s| s > 0)
            .unwrap_or(1);
        Ok(ScriptWork { script, scale })
    }
}

impl Work for ScriptWork {
    type Main = Vec<Statement>;
    type Read = ();
    type Client = Vec<Value>;

    async fn prepare_main(&self, c: &Client) -> Result<Vec<Statement>, tokio_postgres::Error> {
        try_join_all(self.script.commands.iter().filter_map(|command| match command {
            Command::Sql { sql, .. } => Some(c.prepare(sql)),
            _ => None,
        }))
        .await
    }

    async fn prepare_read(&self, _client: &Client) -> Result<(), tokio_postgres::Error> {
        Ok(())
    }

    fn client_state(&self, client: u32) -> Vec<Value> {
        let mut vars = vec![Value::Int(0); self.script.variables.len()];
        vars[SCALE] = Value::Int(self.scale);
        vars[CLIENT_ID] = Value::Int(i64::from(client));
        vars
    }

    async fn execute<'a>(&'a self, tx: Tx<'a, Self>) -> Result<&'static str, TxError> {
        let c = &tx.main.client;
        let statements = &tx.main.statements;
        let vars = tx.state;
        // SQL commands waiting to be sent: (statement, parameters).
        let mut batch: Vec<(usize, Vec<Text>)> = Vec::new();
        let mut next_sql = 0;
        for command in &self.script.commands {
            match command {
                Command::Set { var, expr } => {
                    vars[*var] = eval(expr, vars, tx.rng).map_err(|e| TxError {
                        code: e.code.to_string(),
                        broken: false,
                    })?;
                }
                Command::Sql { params, .. } => {
                    batch.push((
                        next_sql,
                        params.iter().map(|&v| Text(vars[v].to_text())).collect(),
                    ));
                    next_sql += 1;
                }
                Command::Sleep { amount, unit_us } => {
                    send(c, statements, &mut batch).await?;
                    let n = match amount {
                        Amount::Literal(n) => *n,
                        Amount::Var(v) => match vars[*v] {
                            Value::Int(i) => i,
                            Value::Double(d) => d as i64,
                        },
                    };
                    let us = (n.max(0) as u64).saturating_mul(*unit_us);
                    tokio::time::sleep(Duration::from_micros(us)).await;
                }
            }
        }
        send(c, statements, &mut batch).await?;
        Ok("script")
    }
}

/// Sends the batch pipelined, in order, and empties it.
async fn send(
    c: &Client,
    statements: &[Statement],
    batch: &mut Vec<(usize, Vec<Text>)>,
) -> Result<(), TxError> {
    if batch.is_empty() {
        return Ok(());
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = batch
        .iter()
        .map(|(_, p)| p.iter().map(|t| t as &(dyn ToSql + Sync)).collect())
        .collect();
    let futures = batch
        .iter()
        .zip(&params)
        .map(|((i, _), p)| c.execute(&statements[*i], p))
        .collect();
    let results = join_in_order(futures).await;
    let outcome = first_error(c, results);
    batch.clear();
    outcome
}

/// Polls every future in order each time: the first poll of each sends its
/// request, so the requests leave in the script's order.
async fn join_in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(
                outputs
                    .iter_mut()
                    .map(|o| o.take().expect("every future finished"))
                    .collect(),
            )
        }
    })
    .await
}
