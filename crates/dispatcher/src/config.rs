//! The dispatcher's settings, read from the environment the way a service
//! under prodhome (or any orchestrator) receives them.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

/// What the dispatcher was told to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the pickups table lives. Its `Debug` omits the password.
    pub database: tokio_postgres::Config,
    /// The health endpoint's port on 127.0.0.1.
    pub port: u16,
    /// At most this many pickups per transaction.
    pub batch: i64,
    /// The pause after a batch that did not fill up.
    pub interval: Duration,
}

/// A setting that is missing or malformed. The message never repeats
/// `DATABASE_URL` itself: it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set: the dispatcher needs it (see crates/dispatcher/src/lib.rs)")]
    Missing(&'static str),
    #[error("{var} is not valid: {why}")]
    Invalid { var: &'static str, why: String },
}

impl Config {
    /// Reads `DATABASE_URL`, `PORT`, `BATCH` (default 10) and `INTERVAL_MS`
    /// (default 100) from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], with the variables looked up by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let url = var("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
        let mut database = tokio_postgres::Config::from_str(&url).map_err(|e| ConfigError::Invalid {
            var: "DATABASE_URL",
            why: format!("expected postgresql://user:password@host:port/db ({e})"),
        })?;
        // A connect that hangs (a stalled network) must end so the retry
        // loop can go on.
        database.connect_timeout(Duration::from_secs(5));
        if database.get_application_name().is_none() {
            database.application_name("dispatcher");
        }
        let port = number(&var, "PORT", None)?;
        let batch = number(&var, "BATCH", Some(10))?;
        if batch < 1 {
            return Err(ConfigError::Invalid {
                var: "BATCH",
                why: format!("{batch}: must be at least 1"),
            });
        }
        let interval = Duration::from_millis(number(&var, "INTERVAL_MS", Some(100))?);
        Ok(Config {
            database,
            port,
            batch,
            interval,
        })
    }

    /// `host:port` of the database, the only part of `DATABASE_URL` that is
    /// safe to log.
    pub fn database_address(&self) -> String {
        let host = match self.database.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.database.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }
}

fn number<T: FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Option<T>,
) -> Result<T, ConfigError> {
    match (var(name), default) {
        (Some(text), _) => text.trim().parse().map_err(|_| ConfigError::Invalid {
            var: name,
            why: format!("{text:?} is not a number"),
        }),
        (None, Some(value)) => Ok(value),
        (None, None) => Err(ConfigError::Missing(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_apply_and_only_host_and_port_are_shown() {
        let config = Config::from_vars(vars(&[
            ("DATABASE_URL", "postgresql://app:hunter2pw@127.0.0.1:15432/app"),
            ("PORT", "18080"),
        ]))
        .unwrap();
        assert_eq!((config.port, config.batch), (18080, 10));
        assert_eq!(config.interval, Duration::from_millis(100));
        assert_eq!(config.database_address(), "127.0.0.1:15432");
        assert!(!format!("{config:?}").contains("hunter2pw"));
    }

    #[test]
    fn bad_settings_name_the_variable_but_not_the_url() {
        let missing = Config::from_vars(vars(&[("PORT", "1")])).unwrap_err();
        assert!(
            missing.to_string().contains("DATABASE_URL is not set"),
            "{missing}"
        );
        let bad_batch = Config::from_vars(vars(&[
            ("DATABASE_URL", "postgresql://a:pw@127.0.0.1:1/a"),
            ("PORT", "1"),
            ("BATCH", "0"),
        ]))
        .unwrap_err();
        assert!(
            bad_batch.to_string().starts_with("BATCH is not valid"),
            "{bad_batch}"
        );
        let bad_url = Config::from_vars(vars(&[
            ("DATABASE_URL", "postgresql://a:s3cretpw@127.0.0.1:notaport/a"),
            ("PORT", "1"),
        ]))
        .unwrap_err();
        assert!(
            bad_url.to_string().starts_with("DATABASE_URL is not valid"),
            "{bad_url}"
        );
        assert!(!bad_url.to_string().contains("s3cretpw"), "{bad_url}");
    }
}
