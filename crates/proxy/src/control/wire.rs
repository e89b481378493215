//! The control protocol's messages and their mapping onto the proxy's own
//! types (which stay free of serde).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Fault, FaultKind, LinkStats};

/// The longest request line a server reads: anything longer is refused.
pub(crate) const MAX_LINE: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) token: String,
    #[serde(flatten)]
    pub(crate) op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    Apply {
        link: String,
        fault: WireFault,
    },
    Clear {
        link: String,
        kind: String,
    },
    /// One link, or every link when `None`.
    Heal {
        link: Option<String>,
    },
    Faults {
        link: String,
    },
    Stats {
        link: String,
    },
    /// The names of the links served.
    Links,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum WireFault {
    Latency { delay_ns: u64, jitter_ns: u64 },
    Bandwidth { bytes_per_sec: u64 },
    Stall,
    Reset,
    Partition,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) faults: Vec<WireFault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<WireStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) links: Vec<String>,
}

impl Response {
    pub(crate) fn ok() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    pub(crate) fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(message.into()),
            ..Response::default()
        }
    }
}

/// [`LinkStats`], field for field.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct WireStats {
    connections_total: u64,
    connections_active: u64,
    connections_refused: u64,
    connections_killed: u64,
    upstream_failures: u64,
    bytes_to_upstream: u64,
    bytes_to_client: u64,
    faults_applied: u64,
}

impl From<LinkStats> for WireStats {
    fn from(s: LinkStats) -> WireStats {
        WireStats {
            connections_total: s.connections_total,
            connections_active: s.connections_active,
            connections_refused: s.connections_refused,
            connections_killed: s.connections_killed,
            upstream_failures: s.upstream_failures,
            bytes_to_upstream: s.bytes_to_upstream,
            bytes_to_client: s.bytes_to_client,
            faults_applied: s.faults_applied,
        }
    }
}

impl From<WireStats> for LinkStats {
    fn from(s: WireStats) -> LinkStats {
        LinkStats {
            connections_total: s.connections_total,
            connections_active: s.connections_active,
            connections_refused: s.connections_refused,
            connections_killed: s.connections_killed,
            upstream_failures: s.upstream_failures,
            bytes_to_upstream: s.bytes_to_upstream,
            bytes_to_client: s.bytes_to_client,
            faults_applied: s.faults_applied,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl From<Fault> for WireFault {
    fn from(f: Fault) -> WireFault {
        match f {
            Fault::Latency { delay, jitter } => WireFault::Latency {
                delay_ns: nanos(delay),
                jitter_ns: nanos(jitter),
            },
            Fault::Bandwidth { bytes_per_sec } => WireFault::Bandwidth { bytes_per_sec },
            Fault::Stall => WireFault::Stall,
            Fault::Reset => WireFault::Reset,
            Fault::Partition => WireFault::Partition,
        }
    }
}

impl From<WireFault> for Fault {
    fn from(f: WireFault) -> Fault {
        match f {
            WireFault::Latency { delay_ns, jitter_ns } => Fault::Latency {
                delay: Duration::from_nanos(delay_ns),
                jitter: Duration::from_nanos(jitter_ns),
            },
            WireFault::Bandwidth { bytes_per_sec } => Fault::Bandwidth { bytes_per_sec },
            WireFault::Stall => Fault::Stall,
            WireFault::Reset => Fault::Reset,
            WireFault::Partition => Fault::Partition,
        }
    }
}

/// A kind by its name (`FaultKind::as_str`).
pub(crate) fn kind_named(name: &str) -> Option<FaultKind> {
    FaultKind::ALL.into_iter().find(|k| k.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_survive_the_wire() {
        let all = [
            Fault::Latency {
                delay: Duration::from_millis(200),
                jitter: Duration::from_micros(20),
            },
            Fault::Bandwidth { bytes_per_sec: 1000 },
            Fault::Stall,
            Fault::Reset,
            Fault::Partition,
        ];
        for fault in all {
            let text = serde_json::to_string(&WireFault::from(fault)).unwrap();
            let back: WireFault = serde_json::from_str(&text).unwrap();
            assert_eq!(Fault::from(back), fault, "{text}");
        }
        for kind in FaultKind::ALL {
            assert_eq!(kind_named(kind.as_str()), Some(kind));
        }
    }
}
