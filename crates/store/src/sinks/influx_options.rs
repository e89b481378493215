//! What the InfluxDB sink is told: where, which API, how much to batch and
//! keep. Below both the sink and its admin calls, which read it.

use model::Secret;

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct InfluxOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    pub api: InfluxApi,
    /// Most points in one request.
    pub batch: usize,
    /// Most points waiting to be written; more are dropped and counted.
    pub buffer: usize,
    /// The tag `lab` on every line (a point's own `lab` tag wins).
    pub lab: Option<String>,
    /// v1 only: `CREATE DATABASE` on start and when a write finds none.
    pub create_database: bool,
}

/// Which write API: InfluxDB 1.x or 2.x.
#[derive(Debug, Clone)]
pub enum InfluxApi {
    /// `POST /write?db=DB&precision=ns`.
    V1 { db: String },
    /// `POST /api/v2/write?org=ORG&bucket=BUCKET&precision=ns` with
    /// `Authorization: Token TOKEN`.
    V2 {
        org: String,
        bucket: String,
        token: Secret,
    },
}
