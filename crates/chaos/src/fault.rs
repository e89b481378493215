use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL of the node's whole process tree; the supervisor restarts it.
    Kill,
    /// Fast shutdown; the node stays down until the fault ends.
    Stop,
    /// SIGSTOP of the whole server; SIGCONT when the fault ends.
    Pause,
    /// Fast shutdown and start again.
    Restart,
    /// Extra delay (± jitter) on every chunk through a link.
    Latency,
    /// A bytes-per-second limit on a link.
    Bandwidth,
    /// Connections are accepted but nothing is forwarded.
    Stall,
    /// Every connection through the link is dropped now.
    Reset,
    /// New connections refused and existing ones dropped, both ways.
    Partition,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Kill,
        FaultKind::Stop,
        FaultKind::Pause,
        FaultKind::Restart,
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::Stall,
        FaultKind::Reset,
        FaultKind::Partition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Stall => "stall",
            FaultKind::Reset => "reset",
            FaultKind::Partition => "partition",
        }
    }

    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Node faults act on a process; the others on a proxy link.
    pub fn on_node(self) -> bool {
        matches!(
            self,
            FaultKind::Kill | FaultKind::Stop | FaultKind::Pause | FaultKind::Restart
        )
    }

    /// Faults that are over as soon as they are applied (nothing to undo).
    pub fn instant(self) -> bool {
        matches!(self, FaultKind::Kill | FaultKind::Restart | FaultKind::Reset)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a fault acts on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A node's server process.
    Node { node: String },
    /// The replication link from `publisher` to `subscriber` (the
    /// subscriber's connection to its publisher goes through a proxy).
    Link { publisher: String, subscriber: String },
    /// The path clients take to `node` (its proxied port).
    Clients { node: String },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node { node } => f.write_str(node),
            Target::Link {
                publisher,
                subscriber,
            } => write!(f, "{publisher}->{subscriber}"),
            Target::Clients { node } => write!(f, "clients->{node}"),
        }
    }
}

/// Reads a target as written on the command line or in the lab file:
/// `NODE`, `PUBLISHER:SUBSCRIBER` or `clients:NODE`. `->` works in place of
/// `:` too (`publisher->subscriber1`), but a shell reads a bare `>` as a
/// redirect, so `:` is what help and README show. Node names are lowercase
/// letters, digits and `_`, so neither separator can be part of one. Link
/// faults given a bare node mean the client path to it. Names are checked
/// by the caller.
pub fn parse_target(kind: FaultKind, text: &str) -> Result<Target, String> {
    let text = text.trim();
    let split = text.split_once("->").or_else(|| text.split_once(':'));
    match split {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => {
            if kind.on_node() {
                return Err(format!(
                    "{kind} acts on a node, not on a link: write just the node name"
                ));
            }
            Ok(match from {
                "clients" => Target::Clients { node: to.to_string() },
                _ => Target::Link {
                    publisher: from.to_string(),
                    subscriber: to.to_string(),
                },
            })
        }
        Some(_) => Err(format!("`{text}`: expected PUBLISHER:SUBSCRIBER or clients:NODE")),
        None if text.is_empty() => Err("expected a target".into()),
        None if kind.on_node() => Ok(Target::Node {
            node: text.to_string(),
        }),
        None => Ok(Target::Clients {
            node: text.to_string(),
        }),
    }
}

/// One fault, ready to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: Target,
    /// How long before it is undone; `None` until healed by hand (or, for
    /// instant faults, not applicable).
    pub duration: Option<Duration>,
    /// Latency: the added delay and its jitter.
    pub delay: Duration,
    pub jitter: Duration,
    /// Bandwidth: bytes per second.
    pub bytes_per_sec: u64,
}

impl Fault {
    /// A fault with default parameters (100 ms ± 20 ms latency, 64 KiB/s).
    pub fn new(kind: FaultKind, target: Target) -> Self {
        Fault {
            kind,
            target,
            duration: None,
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            bytes_per_sec: 64 * 1024,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.target)?;
        match self.kind {
            FaultKind::Latency => write!(f, " {:?}±{:?}", self.delay, self.jitter)?,
            FaultKind::Bandwidth => write!(f, " {} B/s", self.bytes_per_sec)?,
            _ => {}
        }
        if let Some(d) = self.duration {
            write!(f, " for {d:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_by_fault_kind() {
        let node = |n: &str| Target::Node { node: n.into() };
        assert_eq!(parse_target(FaultKind::Kill, "publisher"), Ok(node("publisher")));
        assert_eq!(
            parse_target(FaultKind::Partition, "publisher->subscriber1"),
            Ok(Target::Link {
                publisher: "publisher".into(),
                subscriber: "subscriber1".into()
            })
        );
        assert_eq!(
            parse_target(FaultKind::Latency, "publisher"),
            Ok(Target::Clients {
                node: "publisher".into()
            })
        );
        assert_eq!(
            parse_target(FaultKind::Stall, "clients->publisher"),
            Ok(Target::Clients {
                node: "publisher".into()
            })
        );
        // No shell quoting needed: `:` reads the same as `->`.
        assert_eq!(
            parse_target(FaultKind::Latency, "publisher:subscriber1"),
            parse_target(FaultKind::Latency, "publisher->subscriber1")
        );
        assert_eq!(
            parse_target(FaultKind::Stall, "clients:publisher"),
            parse_target(FaultKind::Stall, "clients->publisher")
        );
        assert!(parse_target(FaultKind::Pause, "a->b").is_err());
        assert!(parse_target(FaultKind::Pause, "a:b").is_err());
        assert!(parse_target(FaultKind::Partition, ":b").is_err());
        assert!(parse_target(FaultKind::Reset, "a->").is_err());
        assert!(parse_target(FaultKind::Kill, " ").is_err());
        for kind in FaultKind::ALL {
            assert_eq!(FaultKind::parse(kind.name()), Some(kind));
        }
    }
}
