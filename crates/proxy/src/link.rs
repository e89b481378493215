//! A link: one listener, its accept loop, and one task per connection that
//! connects upstream and runs a pump (pump.rs) each way.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::Error;
use crate::fault::{Direction, Fault, FaultKind, State};
use crate::pump::{Ctx, End, pump};
use crate::stats::{Active, Counters, LinkStats};

/// How to start a link.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Names the link in errors and for whoever applies faults (e.g.
    /// `"publisher->subscriber1"`).
    pub name: String,
    /// Where to listen; [`LinkOptions::new`] picks `127.0.0.1:0`, a free port.
    pub listen: SocketAddr,
    /// Where every connection is forwarded.
    pub upstream: SocketAddr,
    /// Seeds latency jitter, so the same seed gives the same delays.
    pub seed: u64,
}

impl LinkOptions {
    /// A link on a free port of 127.0.0.1 to `upstream`, seed 0.
    pub fn new(name: impl Into<String>, upstream: SocketAddr) -> LinkOptions {
        LinkOptions {
            name: name.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            upstream,
            seed: 0,
        }
    }
}

/// A handle to a running link; clones share it. Faults apply to new and
/// existing connections at once. When the last handle is dropped the link
/// stops as if [`Link::shutdown`] had been called, without waiting for it.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    addr: SocketAddr,
    faults: watch::Sender<State>,
    upstream: watch::Sender<SocketAddr>,
    counters: Arc<Counters>,
    accept_loop: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("name", &self.inner.name)
            .field("addr", &self.inner.addr)
            .field("upstream", &self.upstream())
            .field("faults", &self.faults())
            .finish()
    }
}

/// Binds the link's listener and spawns its accept loop (on the current
/// tokio runtime). Fails only when the address cannot be bound.
pub async fn start(opts: LinkOptions) -> Result<Link, Error> {
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| Error::bind(&opts.name, opts.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::bind(&opts.name, opts.listen, e))?;
    let (faults, faults_rx) = watch::channel(State::default());
    let (upstream, upstream_rx) = watch::channel(opts.upstream);
    let counters = Arc::new(Counters::default());
    let accept = AcceptLoop {
        listener,
        faults: faults_rx,
        upstream: upstream_rx,
        counters: counters.clone(),
        seed: opts.seed,
    };
    let handle = tokio::spawn(accept.run());
    Ok(Link {
        inner: Arc::new(Inner {
            name: opts.name,
            addr,
            faults,
            upstream,
            counters,
            accept_loop: Mutex::new(Some(handle)),
        }),
    })
}

impl Link {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where connections are forwarded now.
    pub fn upstream(&self) -> SocketAddr {
        *self.inner.upstream.borrow()
    }

    /// Applies a fault now. A latency or bandwidth fault replaces one of the
    /// same kind; several kinds may be in force together, stall and
    /// partition dominating the others.
    pub fn apply(&self, fault: Fault) {
        Counters::bump(&self.inner.counters.faults_applied);
        self.inner.faults.send_modify(|s| s.apply(fault));
    }

    /// Removes one kind of fault (a reset is already over: no-op).
    pub fn clear(&self, kind: FaultKind) {
        self.inner.faults.send_modify(|s| s.clear(kind));
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.inner.faults.send_modify(State::heal);
    }

    /// The faults in force, in [`FaultKind::ALL`] order.
    pub fn faults(&self) -> Vec<Fault> {
        self.inner.faults.borrow().faults()
    }

    pub fn stats(&self) -> LinkStats {
        self.inner.counters.snapshot()
    }

    /// Forwards new connections to `addr` (existing ones stay where they are).
    pub fn set_upstream(&self, addr: SocketAddr) {
        self.inner.upstream.send_replace(addr);
    }

    /// Drops every connection, closes the listener and waits until all of
    /// the link's tasks have ended. Affects every clone of this handle.
    pub async fn shutdown(self) {
        self.inner.faults.send_modify(|s| s.shutdown = true);
        let handle = self
            .inner
            .accept_loop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            // The loop never panics by design; a JoinError would only say it
            // was already cancelled with its runtime.
            let _ = handle.await;
        }
    }
}

struct AcceptLoop {
    listener: TcpListener,
    faults: watch::Receiver<State>,
    upstream: watch::Receiver<SocketAddr>,
    counters: Arc<Counters>,
    seed: u64,
}

impl AcceptLoop {
    async fn run(mut self) {
        let mut conns = JoinSet::new();
        let mut next_conn = 0u64;
        let mut epoch = self.faults.borrow().reset_epoch;
        loop {
            tokio::select! {
                biased;
                r = self.faults.changed() => {
                    let state = self.faults.borrow_and_update().clone();
                    if r.is_err() || state.shutdown {
                        break;
                    }
                    // A reset or a partition kills every connection open
                    // now. Their straight-through pumps do not watch the
                    // fault channel (that would cost every hop a waiter
                    // registration), so they are aborted from here: their
                    // sockets close with linger 0, i.e. RST to both ends.
                    if state.partition || state.reset_epoch != epoch {
                        conns.abort_all();
                    }
                    epoch = state.reset_epoch;
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                r = self.listener.accept() => match r {
                    Ok((client, _)) => {
                        let state = self.faults.borrow().clone();
                        if state.partition {
                            Counters::bump(&self.counters.connections_refused);
                            abort(&client);
                            continue;
                        }
                        let conn = Conn {
                            id: next_conn,
                            epoch: state.reset_epoch,
                            seed: self.seed,
                            faults: self.faults.clone(),
                            upstream: *self.upstream.borrow(),
                            counters: self.counters.clone(),
                        };
                        next_conn += 1;
                        conns.spawn(conn.serve(client));
                    }
                    // Out of file descriptors and the like: the listener is
                    // fine, so wait a little instead of spinning, then go on.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
            }
        }
        drop(self.listener);
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// One accepted connection.
struct Conn {
    id: u64,
    epoch: u64,
    seed: u64,
    faults: watch::Receiver<State>,
    upstream: SocketAddr,
    counters: Arc<Counters>,
}

impl Conn {
    async fn serve(mut self, mut client: TcpStream) {
        // Counts a kill unless the connection ends by itself (settled).
        let mut active = Active::new(self.counters.clone());
        // Without NODELAY every small request would wait on Nagle's algorithm.
        let _ = client.set_nodelay(true);
        // Until the connection ends cleanly, dropping a socket sends RST: so
        // does a task aborted by a kill (see AcceptLoop::run).
        abort(&client);

        // A stalled link accepts but does not connect upstream until healed:
        // an upstream server's authentication timeout must not run meanwhile.
        let connected = loop {
            let state = self.faults.borrow_and_update().clone();
            if state.kills(self.epoch) {
                break Err(End::Killed);
            }
            if !state.stall {
                break TcpStream::connect(self.upstream).await.map_err(|_| End::Failed);
            }
            if self.faults.changed().await.is_err() {
                break Err(End::Killed);
            }
        };
        let mut upstream = match connected {
            Ok(upstream) => upstream,
            // Counted as a kill when `active` drops.
            Err(End::Killed) => return,
            Err(End::Failed) => {
                Counters::bump(&self.counters.upstream_failures);
                active.settle();
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        abort(&upstream);

        let result = {
            let (mut client_rx, mut client_tx) = client.split();
            let (mut upstream_rx, mut upstream_tx) = upstream.split();
            let to_upstream = pump(
                &mut client_rx,
                &mut upstream_tx,
                self.ctx(Direction::ToUpstream, &self.counters.bytes_to_upstream),
            );
            let to_client = pump(
                &mut upstream_rx,
                &mut client_tx,
                self.ctx(Direction::ToClient, &self.counters.bytes_to_client),
            );
            tokio::try_join!(to_upstream, to_client)
        };
        match result {
            // Both ends closed cleanly: so do we, with FIN.
            Ok(_) => {
                active.settle();
                graceful(&client);
                graceful(&upstream);
            }
            // Counted as a kill when `active` drops. Both ends see a reset,
            // as they would if the network between them broke.
            Err(End::Killed) => {}
            // A failed side: the other end sees a reset too.
            Err(End::Failed) => active.settle(),
        }
    }

    fn ctx<'a>(&self, dir: Direction, bytes: &'a std::sync::atomic::AtomicU64) -> Ctx<'a> {
        Ctx {
            faults: self.faults.clone(),
            epoch: self.epoch,
            seed: self.seed,
            conn: self.id,
            dir,
            bytes,
        }
    }
}

/// Makes the coming drop of `stream` send RST instead of FIN. SO_LINGER 0
/// never blocks on close, unlike other linger values.
fn abort(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Undoes [`abort`]: the drop closes normally, after what was written is
/// sent. Linger off (tokio deprecates setting linger because a positive
/// value blocks on close; off never does).
#[allow(deprecated)]
fn graceful(stream: &TcpStream) {
    let _ = stream.set_linger(None);
}
