//! Helpers: a target for a PgNode, and finding fields in a cycle's points.

use std::time::Duration;

use model::{FieldValue, Point, Secret};
use sampler::{NodeTarget, SamplerOptions};
use testkit::PgNode;

pub(crate) fn target(name: &str, node: &PgNode) -> NodeTarget {
    NodeTarget {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: node.port(),
        user: "postgres".into(),
        password: Secret::new(""),
        dbname: "postgres".into(),
        postmaster_pid: Some(node.pid()),
        local: true,
    }
}

pub(crate) fn options(nodes: Vec<NodeTarget>) -> SamplerOptions {
    SamplerOptions {
        interval: Duration::from_millis(200),
        nodes,
        replications: Vec::new(),
        custom: Vec::new(),
        statement_timeout: Duration::from_millis(500),
    }
}

/// The points of `measurement` on `node` whose tags include `tags`.
pub(crate) fn find<'a>(
    points: &'a [Point],
    measurement: &str,
    node: &str,
    tags: &[(&str, &str)],
) -> Vec<&'a Point> {
    points
        .iter()
        .filter(|p| p.measurement == measurement && p.tags.get("node").map(String::as_str) == Some(node))
        .filter(|p| {
            tags.iter()
                .all(|(k, v)| p.tags.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// A numeric field of the first matching point that has it.
pub(crate) fn value(
    points: &[Point],
    measurement: &str,
    node: &str,
    tags: &[(&str, &str)],
    field: &str,
) -> Option<f64> {
    find(points, measurement, node, tags)
        .into_iter()
        .find_map(|p| match p.fields.get(field)? {
            FieldValue::I64(i) => Some(*i as f64),
            FieldValue::F64(f) => Some(*f),
            FieldValue::Bool(b) => Some(*b as i64 as f64),
            FieldValue::Str(_) => None,
        })
}

/// A tokio-postgres session to a PgNode.
pub(crate) async fn connect(node: &PgNode) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            node.port()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `limit` naming `what`.
pub(crate) async fn poll_async<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `signal` to the postmaster and every process below it. (Postgres
/// children call setsid(), so signalling the postmaster's process group —
/// what `PgNode::pause` does — reaches the postmaster alone.)
pub(crate) fn signal_server(node: &PgNode, signal: nix::sys::signal::Signal) {
    let mut tree = vec![node.pid()];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let pid: Option<u32> = head.split_whitespace().next().and_then(|p| p.parse().ok());
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if let (Some(pid), Some(ppid)) = (pid, ppid)
            && ppid == node.pid()
        {
            tree.push(pid);
        }
    }
    for pid in tree {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}

/// Stops a whole server (every backend too) until [`resume`]; resumes it
/// on drop so a failing test leaves nothing stopped.
pub(crate) struct Paused<'a>(&'a PgNode);

pub(crate) fn pause(node: &PgNode) -> Paused<'_> {
    signal_server(node, nix::sys::signal::Signal::SIGSTOP);
    Paused(node)
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        signal_server(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}
