//! The daemon's side of the control endpoint: the operations of a local
//! [`Link`](crate::Link), asked over TCP. Each call is one short
//! connection, so a link proxy that restarted is simply reached again.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use model::Secret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::wire::{MAX_LINE, Op, Request, Response};
use crate::{Fault, FaultKind, LinkStats};

/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on a link proxy's control endpoint.
#[derive(Debug, Clone)]
pub struct ControlClient {
    addr: SocketAddr,
    token: Secret,
}

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The endpoint could not be reached or answered nothing in time.
    Unreachable { addr: SocketAddr, message: String },
    /// The endpoint answered with an error (a wrong token: `unauthorized`).
    Refused { message: String },
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Unreachable { addr, message } => write!(
                f,
                "the link proxy's control endpoint {addr} does not answer: {message} \
                 (is its container running? `docker ps --filter label=prodhome.lab`)"
            ),
            ControlError::Refused { message } => write!(f, "the link proxy refused: {message}"),
        }
    }
}

impl std::error::Error for ControlError {}

impl ControlClient {
    pub fn new(addr: SocketAddr, token: Secret) -> ControlClient {
        ControlClient { addr, token }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// [`Link::apply`](crate::Link::apply) on the link named `link`.
    pub async fn apply(&self, link: &str, fault: Fault) -> Result<(), ControlError> {
        let op = Op::Apply {
            link: link.into(),
            fault: fault.into(),
        };
        self.call(op).await.map(drop)
    }

    /// [`Link::clear`](crate::Link::clear).
    pub async fn clear(&self, link: &str, kind: FaultKind) -> Result<(), ControlError> {
        let op = Op::Clear {
            link: link.into(),
            kind: kind.as_str().into(),
        };
        self.call(op).await.map(drop)
    }

    /// [`Link::heal`](crate::Link::heal) on one link, or on all with `None`.
    pub async fn heal(&self, link: Option<&str>) -> Result<(), ControlError> {
        let op = Op::Heal {
            link: link.map(str::to_owned),
        };
        self.call(op).await.map(drop)
    }

    /// [`Link::faults`](crate::Link::faults).
    pub async fn faults(&self, link: &str) -> Result<Vec<Fault>, ControlError> {
        let r = self.call(Op::Faults { link: link.into() }).await?;
        Ok(r.faults.into_iter().map(Into::into).collect())
    }

    /// [`Link::stats`](crate::Link::stats).
    pub async fn stats(&self, link: &str) -> Result<LinkStats, ControlError> {
        let r = self.call(Op::Stats { link: link.into() }).await?;
        Ok(r.stats.unwrap_or_default().into())
    }

    /// The names of the links the proxy carries (also a readiness check).
    pub async fn links(&self) -> Result<Vec<String>, ControlError> {
        Ok(self.call(Op::Links).await?.links)
    }

    async fn call(&self, op: Op) -> Result<Response, ControlError> {
        let unreachable = |message: String| ControlError::Unreachable {
            addr: self.addr,
            message,
        };
        let response = tokio::time::timeout(CALL_TIMEOUT, self.exchange(op))
            .await
            .map_err(|_| unreachable(format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        match response.ok {
            true => Ok(response),
            false => Err(ControlError::Refused {
                message: response.error.unwrap_or_else(|| "no reason given".into()),
            }),
        }
    }

    async fn exchange(&self, op: Op) -> std::io::Result<Response> {
        let request = Request {
            token: self.token.expose().to_owned(),
            op,
        };
        let mut line = serde_json::to_string(&request).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.write_all(line.as_bytes()).await?;
        let mut answer = String::new();
        BufReader::new(stream)
            .take(MAX_LINE)
            .read_line(&mut answer)
            .await?;
        if answer.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed without an answer",
            ));
        }
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    }
}
