//! What a run is asked to do: the target, the workload, how many clients at
//! which rate for how long, and the seeded stochastic failures.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use model::Secret;
use tokio_postgres::config::Host;

use crate::error::{Error, ErrorKind};

/// A server to connect to over TCP.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    /// The node's name: the `node` tag of every Point.
    pub name: String,
}

impl Target {
    /// A target from a `postgresql://user:password@host:port/db` URL (or a
    /// `key=value` connection string); `name` defaults to `host:port`.
    pub fn from_url(url: &str, name: Option<&str>) -> Result<Target, Error> {
        let bad = |what: &str| {
            Error::new(
                ErrorKind::Options,
                format!("connection URL: {what}; write postgresql://USER[:PASSWORD]@HOST:PORT/DB"),
            )
        };
        let config =
            tokio_postgres::Config::from_str(url).map_err(|e| bad(&format!("cannot parse it ({e})")))?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(_) => return Err(bad("unix sockets are not supported, give a TCP host")),
            None => "127.0.0.1".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config
            .get_user()
            .ok_or_else(|| bad("it names no user"))?
            .to_string();
        let password = match config.get_password() {
            Some(bytes) => Some(Secret::new(
                String::from_utf8(bytes.to_vec()).map_err(|_| bad("the password is not UTF-8"))?,
            )),
            None => None,
        };
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        let name = name.map_or_else(|| format!("{host}:{port}"), str::to_string);
        Ok(Target {
            host,
            port,
            user,
            password,
            dbname,
            name,
        })
    }

    /// The connection settings hum uses: a 5 s connect timeout, so a
    /// stopped server shows as a failed attempt, not a hang.
    pub(crate) fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("prodhome-hum")
            .connect_timeout(Duration::from_secs(5));
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        config
    }
}

/// What each transaction does.
#[derive(Debug, Clone)]
pub enum Workload {
    /// pgbench's TPC-B-like transaction on pgbench-compatible tables at
    /// `scale` (100,000 accounts, 10 tellers and 1 branch per unit). A run
    /// uses the scale the tables have; `scale` is what [`crate::init`]
    /// creates.
    Tpcb { scale: u32 },
    /// Inserts, updates and reads on the seed lab's `books` table.
    Books,
    /// A script in pgbench's syntax; `path` names it in error messages.
    Script { path: PathBuf, text: String },
}

impl Workload {
    /// `tpcb`, `books`, or the script's file name: the `workload` tag.
    pub fn name(&self) -> String {
        match self {
            Workload::Tpcb { .. } => "tpcb".to_string(),
            Workload::Books => "books".to_string(),
            Workload::Script { path, .. } => path
                .file_name()
                .map_or_else(|| "script".to_string(), |n| n.to_string_lossy().into_owned()),
        }
    }

    /// The tables [`crate::init`] creates on the target: none for a
    /// script (its tables are the user's).
    pub fn tables(&self) -> &'static [&'static str] {
        match self {
            Workload::Tpcb { .. } => &crate::workload::tpcb::TABLES,
            Workload::Books => &["books"],
            Workload::Script { .. } => &[],
        }
    }

    /// Each of [`Workload::tables`] with the statements that create it,
    /// keys and indexes included and no rows, idempotent (`CREATE TABLE IF
    /// NOT EXISTS`): what a node that gets the rows by replication needs.
    pub fn schema_sql(&self) -> Vec<(&'static str, String)> {
        match self {
            Workload::Tpcb { scale } => crate::workload::tpcb::schema_sql(*scale),
            Workload::Books => vec![("books", crate::workload::books::CREATE.to_string())],
            Workload::Script { .. } => Vec::new(),
        }
    }
}

/// How fast transactions are started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Closed loop: each client starts its next transaction when the last
    /// one ends (plain pgbench). Latency is measured from the real start.
    Max,
    /// Open loop: transactions per second over all clients, scheduled on a
    /// timeline (Poisson arrivals, like pgbench `--rate`); latency is
    /// measured from the scheduled start, so a stall shows as latency.
    PerSecond(f64),
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        if text.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        match text.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "`{text}` is not a rate; write transactions per second (e.g. 500) or `max`"
            )),
        }
    }
}

/// Seeded, reproducible trouble. All off by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stochastic {
    /// Rate spikes (open loop only): every ~20 s on average the rate
    /// multiplies by 2–5× for 2–8 s.
    pub spikes: bool,
    /// The share (0–1) of scheduled transactions that become a long one:
    /// on a connection of its own, beside the client's schedule (as another
    /// application's would be), it locks a hot row (`SELECT … FOR UPDATE`
    /// on a pgbench branch, or one of the 10 lowest book ids) and holds it
    /// 0.5–3 s, so the other transactions wait on the lock. tpcb and books
    /// only; counted apart (`long_transactions`), not in the latency
    /// histogram — the waits they cause are.
    pub long_tx_share: f64,
    /// The share (0–1) of transactions after which the client drops its
    /// connection and opens a new one, as application clients come and go.
    pub disconnect_share: f64,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct HumOptions {
    /// Where writes (and reads, without `read_targets`) go.
    pub target: Target,
    /// Where the books workload sends its reads, like read replicas:
    /// client `i` reads from `read_targets[i % len]`.
    pub read_targets: Vec<Target>,
    pub workload: Workload,
    /// Concurrent sessions, one connection each (plus one to its read target).
    pub clients: u32,
    pub rate: Rate,
    /// Stop after this long; with neither this nor `transactions`, run
    /// until `stop`.
    pub duration: Option<Duration>,
    /// Stop after this many transactions in total over all clients
    /// (pgbench's `-t` is per client).
    pub transactions: Option<u64>,
    /// Seeds every random choice: the schedule, the stochastic failures
    /// and the workload's keys and values.
    pub seed: u64,
    pub stochastic: Stochastic,
    /// Record every acknowledged write here (see [`crate::ledger`]).
    pub ledger: Option<PathBuf>,
    /// Print a progress line to stderr this often.
    pub progress: Option<Duration>,
}

impl HumOptions {
    /// Options with defaults: 4 clients, max rate, no limit, seed 0.
    pub fn new(target: Target, workload: Workload) -> HumOptions {
        HumOptions {
            target,
            read_targets: Vec::new(),
            workload,
            clients: 4,
            rate: Rate::Max,
            duration: None,
            transactions: None,
            seed: 0,
            stochastic: Stochastic::default(),
            ledger: None,
            progress: None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::new(ErrorKind::Options, m));
        if self.clients == 0 {
            return bad("clients must be at least 1".into());
        }
        if let Rate::PerSecond(r) = self.rate
            && !(r > 0.0 && r.is_finite())
        {
            return bad(format!(
                "rate {r} must be a positive number of transactions per second"
            ));
        }
        for (name, share) in [
            ("long_tx_share", self.stochastic.long_tx_share),
            ("disconnect_share", self.stochastic.disconnect_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return bad(format!("{name} {share} must be between 0 and 1"));
            }
        }
        if let Workload::Tpcb { scale } = self.workload
            && scale == 0
        {
            return bad("scale must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_becomes_target() {
        let t = Target::from_url("postgresql://alice:pw@127.0.0.1:5999/shop", None).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str()),
            ("127.0.0.1", 5999, "alice")
        );
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!((t.dbname.as_str(), t.name.as_str()), ("shop", "127.0.0.1:5999"));
        let e = Target::from_url("postgresql://127.0.0.1/x", None).unwrap_err();
        assert!(e.to_string().contains("names no user"), "{e}");
    }

    #[test]
    fn rates() {
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("250".parse::<Rate>(), Ok(Rate::PerSecond(250.0)));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }
}
