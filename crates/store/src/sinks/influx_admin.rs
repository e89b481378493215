//! Talking to InfluxDB about itself rather than writing to it: creating
//! the v1 database the sink writes to, and [`check_influx`], what
//! `prodhome doctor` asks before a lab starts (is it there, does the
//! database or bucket exist, is the token taken).

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::error::Error;
use crate::sinks::influx_options::{InfluxApi, InfluxOptions};

/// One request's limit for the doctor's questions.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| Error::with("building the HTTP client for InfluxDB", e))
}

/// A v1 database, by its server's `/query` endpoint.
pub(crate) struct Database {
    query: Url,
    name: String,
}

impl Database {
    pub(crate) fn new(base: &str, name: &str) -> Result<Database, Error> {
        let query = Url::parse(&format!("{}/query", base.trim_end_matches('/'))).map_err(|e| {
            Error::with(
                format!("the InfluxDB URL `{base}` is not valid; write e.g. http://127.0.0.1:8086"),
                e,
            )
        })?;
        Ok(Database {
            query,
            name: name.to_string(),
        })
    }

    /// `CREATE DATABASE "name"` (a no-op when it exists). `Err` says what
    /// InfluxDB answered.
    pub(crate) async fn create(&self, client: &reqwest::Client) -> Result<(), String> {
        let statement = format!("CREATE DATABASE {}", quote_ident(&self.name));
        let mut url = self.query.clone();
        url.query_pairs_mut().append_pair("q", &statement);
        let response = client
            .post(url)
            .send()
            .await
            .map_err(|e| format!("creating database {:?} at {}: {e}", self.name, host(&self.query)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let inner = serde_json::from_str::<QueryAnswer>(&text)
            .ok()
            .and_then(|a| a.results.into_iter().find_map(|r| r.error));
        match (status.is_success(), inner) {
            (true, None) => Ok(()),
            (_, Some(error)) => Err(format!(
                "InfluxDB refused to create database {:?}: {error}",
                self.name
            )),
            (false, None) => Err(format!(
                "InfluxDB at {} answered {status} to CREATE DATABASE {:?}: {}",
                host(&self.query),
                self.name,
                error_text(&text)
            )),
        }
    }
}

/// An InfluxQL identifier in double quotes (so keywords like
/// `replication` and names with spaces are safe).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// InfluxDB's own words from an error body: the `error` of its JSON
/// (`{"error":"database not found: \"lab\""}`), else the body as is.
pub(crate) fn error_text(body: &str) -> String {
    #[derive(Deserialize)]
    struct Failure {
        error: String,
    }
    match serde_json::from_str::<Failure>(body) {
        Ok(f) => f.error,
        Err(_) => body.trim().to_string(),
    }
}

fn host(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[derive(Deserialize)]
struct QueryAnswer {
    #[serde(default)]
    results: Vec<QueryResult>,
}

#[derive(Deserialize)]
struct QueryResult {
    error: Option<String>,
    #[serde(default)]
    series: Vec<QuerySeries>,
}

#[derive(Deserialize)]
struct QuerySeries {
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Buckets {
    #[serde(default)]
    buckets: Vec<serde_json::Value>,
}

/// What [`check_influx`] found on a server that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxCheck {
    /// The server's `X-Influxdb-Version`, when it says.
    pub version: Option<String>,
    /// `database "lab"` or `bucket "lab" of org "home"`.
    pub target: String,
    pub exists: bool,
    /// Missing, but the sink creates it on start (v1, `create_database`).
    pub will_create: bool,
}

/// Asks the server in `opts` whether the sink could write: `/ping`, then
/// whether the database (v1) or bucket (v2, with the token) exists. `Err`
/// says what is wrong and what to do: down, no v2 API, token refused.
pub async fn check_influx(opts: &InfluxOptions) -> Result<InfluxCheck, Error> {
    let base = opts.url.trim_end_matches('/');
    let client = client(CHECK_TIMEOUT)?;
    let ping = client.get(format!("{base}/ping")).send().await.map_err(|e| {
        Error::with(
            format!("InfluxDB at {base} did not answer /ping; start it, or fix [sample.influx] url"),
            e,
        )
    })?;
    if !ping.status().is_success() {
        return Err(Error::new(format!(
            "{base}/ping answered {}: is this InfluxDB? Fix [sample.influx] url",
            ping.status()
        )));
    }
    let version = ping
        .headers()
        .get("X-Influxdb-Version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match &opts.api {
        InfluxApi::V1 { db } => {
            let exists = databases(&client, base).await?.iter().any(|d| d == db);
            Ok(InfluxCheck {
                version,
                target: format!("database {db:?}"),
                exists,
                will_create: !exists && opts.create_database,
            })
        }
        InfluxApi::V2 { org, bucket, token } => {
            let exists = bucket_exists(&client, base, org, bucket, token).await?;
            Ok(InfluxCheck {
                version,
                target: format!("bucket {bucket:?} of org {org:?}"),
                exists,
                will_create: false,
            })
        }
    }
}

async fn databases(client: &reqwest::Client, base: &str) -> Result<Vec<String>, Error> {
    let url = Url::parse_with_params(&format!("{base}/query"), [("q", "SHOW DATABASES")])
        .map_err(|e| Error::with(format!("the InfluxDB URL `{base}` is not valid"), e))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Error::with(format!("asking InfluxDB at {base} for its databases"), e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Error::new(format!(
            "InfluxDB at {base} answered {status} to SHOW DATABASES: {}",
            error_text(&text)
        )));
    }
    let answer: QueryAnswer = serde_json::from_str(&text)
        .map_err(|e| Error::with(format!("reading InfluxDB's list of databases at {base}"), e))?;
    let mut names = Vec::new();
    for result in answer.results {
        if let Some(error) = result.error {
            return Err(Error::new(format!("InfluxDB at {base}: SHOW DATABASES: {error}")));
        }
        for series in result.series {
            names.extend(
                series
                    .values
                    .iter()
                    .filter_map(|row| row.first()?.as_str().map(str::to_string)),
            );
        }
    }
    Ok(names)
}

async fn bucket_exists(
    client: &reqwest::Client,
    base: &str,
    org: &str,
    bucket: &str,
    token: &model::Secret,
) -> Result<bool, Error> {
    let url = Url::parse_with_params(
        &format!("{base}/api/v2/buckets"),
        [("org", org), ("name", bucket)],
    )
    .map_err(|e| Error::with(format!("the InfluxDB URL `{base}` is not valid"), e))?;
    let response = client
        .get(url)
        .header("Authorization", format!("Token {}", token.expose()))
        .send()
        .await
        .map_err(|e| Error::with(format!("asking InfluxDB at {base} for bucket {bucket:?}"), e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match status {
        s if s.is_success() => {
            Ok(serde_json::from_str::<Buckets>(&text).is_ok_and(|b| !b.buckets.is_empty()))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::new(format!(
            "InfluxDB at {base} refused the token ({status}: {}); check the variable [sample.influx] token_env names",
            error_text(&text)
        ))),
        StatusCode::NOT_FOUND if text.contains("organization") => Err(Error::new(format!(
            "InfluxDB at {base} has no org {org:?}: {}; fix [sample.influx] org",
            error_text(&text)
        ))),
        StatusCode::NOT_FOUND => Err(Error::new(format!(
            "InfluxDB at {base} has no v2 API (/api/v2 answered 404): for InfluxDB 1.x write `db = \"NAME\"` in [sample.influx] instead of org, bucket and token_env"
        ))),
        _ => Err(Error::new(format!(
            "InfluxDB at {base} answered {status} about bucket {bucket:?}: {}",
            error_text(&text)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_influxdb_said_them_and_identifiers_are_quoted() {
        assert_eq!(
            error_text("{\"error\":\"database not found: \\\"lab\\\"\"}\n"),
            "database not found: \"lab\""
        );
        assert_eq!(error_text(" 404 page not found\n"), "404 page not found");
        assert_eq!(quote_ident("my \"lab\""), "\"my \\\"lab\\\"\"");
    }
}
