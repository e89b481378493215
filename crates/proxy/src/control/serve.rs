//! The server side: the links of a link proxy, the loop that keeps each
//! upstream's address current, and the control endpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use model::Secret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::wire::{MAX_LINE, Op, Request, Response, kind_named};
use crate::{Link, LinkOptions};

/// One link a link proxy carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLinkSpec {
    /// e.g. `publisher->subscriber1`.
    pub name: String,
    /// The port it listens on (every interface of the proxy's network namespace).
    pub port: u16,
    /// The upstream's host name (a container name on the lab network) and port.
    pub upstream_host: String,
    pub upstream_port: u16,
}

impl RemoteLinkSpec {
    /// The link as one command-line argument, `NAME@PORT=HOST:PORT`
    /// (`publisher->sub1@15433=prodhome-lab-publisher:15432`), which
    /// [`RemoteLinkSpec::parse_arg`] reads back.
    pub fn to_arg(&self) -> String {
        format!(
            "{}@{}={}:{}",
            self.name, self.port, self.upstream_host, self.upstream_port
        )
    }

    /// Reads [`RemoteLinkSpec::to_arg`]'s form; the error says what it expected.
    pub fn parse_arg(arg: &str) -> Result<RemoteLinkSpec, String> {
        let bad = || format!("`{arg}`: expected NAME@PORT=HOST:PORT");
        let (name, rest) = arg.split_once('@').ok_or_else(bad)?;
        let (port, upstream) = rest.split_once('=').ok_or_else(bad)?;
        let (host, upstream_port) = upstream.rsplit_once(':').ok_or_else(bad)?;
        if name.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(RemoteLinkSpec {
            name: name.into(),
            port: port.parse().map_err(|_| bad())?,
            upstream_host: host.into(),
            upstream_port: upstream_port.parse().map_err(|_| bad())?,
        })
    }
}

/// What [`serve_links`] runs.
#[derive(Debug, Clone)]
pub struct LinkServerOptions {
    /// The control endpoint's address.
    pub control: SocketAddr,
    pub token: Secret,
    /// Seeds latency jitter on every link.
    pub seed: u64,
    pub links: Vec<RemoteLinkSpec>,
}

/// Why a link server could not start.
#[derive(Debug)]
pub struct ServeError(String);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// Starts every link, keeps their upstreams resolved and answers the
/// control endpoint; returns only when a listener cannot be bound.
pub async fn serve_links(opts: LinkServerOptions) -> Result<(), ServeError> {
    let control = TcpListener::bind(opts.control).await.map_err(|e| {
        ServeError(format!(
            "link proxy: cannot listen on {} for control: {e}",
            opts.control
        ))
    })?;
    let mut links = BTreeMap::new();
    for spec in &opts.links {
        let mut link_opts = LinkOptions::new(spec.name.clone(), crate::UNRESOLVED);
        link_opts.listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, spec.port));
        link_opts.seed = opts.seed;
        let link = crate::start(link_opts)
            .await
            .map_err(|e| ServeError(e.to_string()))?;
        tokio::spawn(crate::follow_upstream(
            link.clone(),
            spec.upstream_host.clone(),
            spec.upstream_port,
        ));
        links.insert(spec.name.clone(), link);
    }
    serve_control(control, opts.token, links).await;
    Ok(())
}

/// Answers control requests for `links` on `listener`, forever.
pub async fn serve_control(listener: TcpListener, token: Secret, links: BTreeMap<String, Link>) {
    let shared = Arc::new((token, links));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, shared.clone()));
            }
            // Out of descriptors and the like: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn connection(stream: TcpStream, shared: Arc<(Secret, BTreeMap<String, Link>)>) {
    let (token, links) = (&shared.0, &shared.1);
    let (rx, mut tx) = stream.into_split();
    let mut rx = BufReader::new(rx);
    loop {
        let mut line = String::new();
        match (&mut rx).take(MAX_LINE).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => {
                let _ = send(&mut tx, &Response::error("request too long")).await;
                return;
            }
            Ok(_) => {}
        }
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = send(&mut tx, &Response::error(format!("bad request: {e}"))).await;
                return;
            }
        };
        if !token.matches(request.token.as_bytes()) {
            let _ = send(&mut tx, &Response::error("unauthorized")).await;
            return;
        }
        if send(&mut tx, &answer(links, request.op)).await.is_err() {
            return;
        }
    }
}

async fn send(tx: &mut tokio::net::tcp::OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    let mut text = serde_json::to_string(response).unwrap_or_else(|_| "{\"ok\":false}".into());
    text.push('\n');
    tx.write_all(text.as_bytes()).await
}

fn answer(links: &BTreeMap<String, Link>, op: Op) -> Response {
    let one = |name: &str| {
        links.get(name).ok_or_else(|| {
            let known: Vec<&str> = links.keys().map(String::as_str).collect();
            format!("no link {name}; links are {}", known.join(", "))
        })
    };
    let result = match op {
        Op::Apply { link, fault } => one(&link).map(|l| {
            l.apply(fault.into());
            Response::ok()
        }),
        Op::Clear { link, kind } => match kind_named(&kind) {
            Some(kind) => one(&link).map(|l| {
                l.clear(kind);
                Response::ok()
            }),
            None => Err(format!("no fault kind {kind}")),
        },
        Op::Heal { link: Some(link) } => one(&link).map(|l| {
            l.heal();
            Response::ok()
        }),
        Op::Heal { link: None } => {
            links.values().for_each(Link::heal);
            Ok(Response::ok())
        }
        Op::Faults { link } => one(&link).map(|l| Response {
            faults: l.faults().into_iter().map(Into::into).collect(),
            ..Response::ok()
        }),
        Op::Stats { link } => one(&link).map(|l| Response {
            stats: Some(l.stats().into()),
            ..Response::ok()
        }),
        Op::Links => Ok(Response {
            links: links.keys().cloned().collect(),
            ..Response::ok()
        }),
    };
    result.unwrap_or_else(Response::error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_spec_reads_back_from_its_argument_and_bad_ones_say_the_form() {
        let spec = RemoteLinkSpec {
            name: "publisher->sub1".into(),
            port: 15433,
            upstream_host: "prodhome-lab-publisher".into(),
            upstream_port: 15432,
        };
        assert_eq!(
            spec.to_arg(),
            "publisher->sub1@15433=prodhome-lab-publisher:15432"
        );
        assert_eq!(RemoteLinkSpec::parse_arg(&spec.to_arg()), Ok(spec));
        for bad in [
            "p->s",
            "p->s@x=h:1",
            "p->s@1=h",
            "@1=h:2",
            "p->s@1=:2",
            "p->s@1=h:x",
        ] {
            let err = RemoteLinkSpec::parse_arg(bad).unwrap_err();
            assert!(err.contains("expected NAME@PORT=HOST:PORT"), "{bad}: {err}");
        }
    }
}
