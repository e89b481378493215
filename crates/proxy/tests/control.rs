//! The control endpoint over real sockets: a link behind `serve_control`,
//! driven through `ControlClient` as the daemon drives a link proxy.

use std::collections::BTreeMap;
use std::time::Duration;

use model::Secret;
use proxy::control::{ControlClient, ControlError, serve_control};
use proxy::{Fault, FaultKind};
use tokio::net::{TcpListener, TcpStream};

use crate::{MS, connect, echo_server, is_dropped, link_to, refused, round_trip, within};

async fn controlled() -> (proxy::Link, ControlClient) {
    let link = link_to(echo_server().await).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = Secret::new("s3cret-token");
    let links = BTreeMap::from([("pub->sub".to_owned(), link.clone())]);
    tokio::spawn(serve_control(listener, token.clone(), links));
    (link, ControlClient::new(addr, token))
}

#[tokio::test]
async fn a_client_applies_lists_clears_and_heals_faults_on_a_served_link() {
    let (link, client) = controlled().await;
    assert_eq!(client.links().await.unwrap(), ["pub->sub"]);
    let latency = Fault::Latency {
        delay: 60 * MS,
        jitter: Duration::ZERO,
    };
    client.apply("pub->sub", latency).await.unwrap();
    client.apply("pub->sub", Fault::Stall).await.unwrap();
    assert_eq!(client.faults("pub->sub").await.unwrap(), [latency, Fault::Stall]);
    assert_eq!(
        link.faults(),
        [latency, Fault::Stall],
        "the served link itself carries them"
    );
    client.clear("pub->sub", FaultKind::Stall).await.unwrap();
    let mut s = connect(&link).await;
    assert!(round_trip(&mut s).await >= 120 * MS, "latency acts both ways");
    client.apply("pub->sub", Fault::Partition).await.unwrap();
    assert!(is_dropped(&mut s).await, "a partition drops the connection");
    assert!(refused(&link).await);
    client.heal(None).await.unwrap();
    assert!(client.faults("pub->sub").await.unwrap().is_empty());
    let mut s = connect(&link).await;
    within("a round trip after heal", round_trip(&mut s)).await;
    let stats = client.stats("pub->sub").await.unwrap();
    assert_eq!(stats, link.stats());
    assert!(
        stats.connections_total >= 2 && stats.faults_applied == 3,
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_wrong_token_or_an_unknown_link_is_refused_and_changes_nothing() {
    let (link, client) = controlled().await;
    let intruder = ControlClient::new(client.addr(), Secret::new("guess"));
    let err = intruder.apply("pub->sub", Fault::Partition).await.unwrap_err();
    assert_eq!(
        err,
        ControlError::Refused {
            message: "unauthorized".into()
        }
    );
    assert!(link.faults().is_empty());
    let err = client.apply("pub->nobody", Fault::Stall).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no link pub->nobody; links are pub->sub"),
        "{err}"
    );
    assert!(link.faults().is_empty());
}

#[tokio::test]
async fn an_endpoint_that_is_gone_is_unreachable_naming_its_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = ControlClient::new(addr, Secret::new("t"));
    let err = client.heal(None).await.unwrap_err();
    assert!(matches!(err, ControlError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // Nothing listens: a plain connect fails the same way.
    assert!(TcpStream::connect(addr).await.is_err());
}
