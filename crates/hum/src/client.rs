//! Connections that come back: a [`Conn`] holds one session (a client and
//! its prepared statements) or the time of its next attempt. A lost
//! connection is re-opened with exponential backoff (50 ms doubling to 2 s),
//! each failed attempt and each reconnect counted, so a restarting node or
//! a failover never ends a run.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::{Client, Config, NoTls};

use crate::stats::Stats;

const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Opens a connection; its I/O runs on a task of its own.
pub(crate) async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Its errors reach the client's pending requests; nothing to add.
        let _ = connection.await;
    });
    Ok(client)
}

/// A connected client and the statements prepared on it.
pub(crate) struct Session<S> {
    pub(crate) client: Client,
    pub(crate) statements: S,
}

/// One client's connection to one server.
pub(crate) struct Conn<S> {
    config: Config,
    session: Option<Session<S>>,
    /// The last session was lost (not dropped on purpose): the next
    /// successful connect is a reconnect.
    lost: bool,
    backoff: Duration,
    next_attempt: Instant,
}

impl<S> Conn<S> {
    pub(crate) fn new(config: Config, session: Option<Session<S>>) -> Conn<S> {
        Conn {
            config,
            lost: false,
            session,
            backoff: BACKOFF_FIRST,
            next_attempt: Instant::now(),
        }
    }

    /// The session, when connected.
    pub(crate) fn session(&self) -> Option<&Session<S>> {
        self.session.as_ref().filter(|s| !s.client.is_closed())
    }

    /// Whether a session is up; one whose connection closed while idle
    /// (the server restarted) counts as lost.
    pub(crate) fn up(&mut self) -> bool {
        if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            self.lost();
        }
        self.session.is_some()
    }

    /// The session broke: forget it and reconnect later.
    pub(crate) fn lost(&mut self) {
        if self.session.take().is_some() {
            self.lost = true;
            self.next_attempt = Instant::now();
        }
    }

    /// Close the session on purpose; the next use opens a new one at once.
    pub(crate) fn drop_session(&mut self) {
        self.session = None;
        self.lost = false;
        self.next_attempt = Instant::now();
    }

    pub(crate) fn next_attempt(&self) -> Instant {
        self.next_attempt
    }

    /// Whether an attempt to connect may be made now (backoff elapsed).
    pub(crate) fn due(&self) -> bool {
        Instant::now() >= self.next_attempt
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Takes the result of an attempt to connect (and prepare); returns
    /// whether a session is up.
    pub(crate) fn record(
        &mut self,
        attempt: Result<Session<S>, tokio_postgres::Error>,
        stats: &Stats,
    ) -> bool {
        match attempt {
            Ok(session) => {
                if self.lost {
                    stats.reconnected();
                }
                self.session = Some(session);
                self.lost = false;
                self.backoff = BACKOFF_FIRST;
                true
            }
            Err(_) => {
                stats.connect_failed();
                self.lost = true;
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                false
            }
        }
    }
}

/// Why a transaction failed: its SQLSTATE, and whether the connection is
/// gone with it.
#[derive(Debug)]
pub(crate) struct TxError {
    pub(crate) code: String,
    pub(crate) broken: bool,
}

impl TxError {
    /// A failure that is not the server's (no connection to read from).
    pub(crate) fn unavailable() -> TxError {
        TxError {
            code: "08001".to_string(),
            broken: false,
        }
    }

    /// Classifies an error from `client`: server errors by their SQLSTATE;
    /// anything else means the connection broke (08006).
    pub(crate) fn from_pg(e: &tokio_postgres::Error, client: &Client) -> TxError {
        match e.code() {
            Some(code) => {
                let code = code.code();
                // Class 08 and the 57P0x (shutdown, crash) end the session.
                let broken = client.is_closed() || code.starts_with("08") || code.starts_with("57P");
                TxError {
                    code: code.to_string(),
                    broken,
                }
            }
            None => TxError {
                code: "08006".to_string(),
                broken: true,
            },
        }
    }
}

/// When a client must stop starting work: the stop signal or the deadline.
#[derive(Clone)]
pub(crate) struct Halt {
    stop: watch::Receiver<bool>,
    deadline: Option<Instant>,
}

impl Halt {
    pub(crate) fn new(stop: watch::Receiver<bool>, deadline: Option<Instant>) -> Halt {
        Halt { stop, deadline }
    }

    pub(crate) fn is_due(&self) -> bool {
        *self.stop.borrow() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Resolves when the run is stopped or past its deadline.
    pub(crate) async fn wait(&mut self) {
        let deadline = self.deadline;
        tokio::select! {
            () = stopped(&mut self.stop) => {}
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }

    /// Sleeps until `t`; false when halted first.
    pub(crate) async fn sleep_until(&mut self, t: Instant) -> bool {
        if self.is_due() {
            return false;
        }
        if t <= Instant::now() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep_until(t.into()) => true,
            () = self.wait() => false,
        }
    }
}

/// Resolves when `stop` turns true; never, once its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let sent = stop.wait_for(|s| *s).await.is_ok();
    if !sent {
        std::future::pending::<()>().await;
    }
}
