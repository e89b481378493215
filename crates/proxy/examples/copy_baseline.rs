//! The smallest tokio TCP proxy there is — accept, connect, then
//! `tokio::io::copy_bidirectional` — for the benchmark to run beside a real
//! link: it shows what any userspace hop costs on the machine, so the link's
//! own overhead can be told apart from it.
//!
//!   cargo run -p proxy --example copy_baseline -- 127.0.0.1:5432
//!
//! Prints the port it listens on (one line, on stdout) once it is ready.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: copy_baseline UPSTREAM_ADDR";
    let upstream: SocketAddr = std::env::args().nth(1).ok_or(usage)?.parse()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    loop {
        let (mut client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}
