//! A publication and subscription set up by `pg`, their sync, the lag
//! reading, and the proofs `verify` and `soak` rest on.

use std::path::Path;
use std::time::Duration;

use pg::{ReplicationSpec, SchemaSpec, SubscriberSpec};
use tokio_postgres::Client;

use crate::server::{Machine, Server, one};

const SCHEMA: &str = "CREATE TABLE books (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO books SELECT g, 'book ' || g FROM generate_series(1, 100) g;
";

/// Publisher and subscriber, bootstrapped, with `books` replicated and synced.
struct Pair {
    publisher: Server,
    subscriber: Server,
    pub_client: Client,
    sub_client: Client,
}

async fn replicated(machine: &Machine) -> Pair {
    let publisher = machine.start("publisher").await;
    let subscriber = machine.start("subscriber").await;
    let pub_client = publisher.bootstrapped().await;
    let sub_client = subscriber.bootstrapped().await;
    set_up(&publisher, &subscriber, &pub_client, &sub_client)
        .await
        .expect("setup_replication");
    Pair {
        publisher,
        subscriber,
        pub_client,
        sub_client,
    }
}

async fn set_up(
    publisher: &Server,
    subscriber: &Server,
    pub_client: &Client,
    sub_client: &Client,
) -> Result<Vec<String>, pg::Error> {
    set_up_with(publisher, subscriber, pub_client, sub_client, false).await
}

async fn set_up_with(
    publisher: &Server,
    subscriber: &Server,
    pub_client: &Client,
    sub_client: &Client,
    made_elsewhere: bool,
) -> Result<Vec<String>, pg::Error> {
    let spec = ReplicationSpec {
        name: "shop",
        publisher: &publisher.spec,
        subscribers: vec![SubscriberSpec {
            node: &subscriber.spec,
            client: sub_client,
            publisher_host: "127.0.0.1".into(),
            publisher_port: publisher.spec.port,
            log: subscriber.log.clone(),
        }],
        schema: Some(SchemaSpec {
            path: Path::new("schema.sql"),
            sql: SCHEMA,
        }),
        tables: None,
        made_elsewhere,
    };
    pg::setup_replication(&spec, pub_client, Duration::from_secs(120)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_syncs_streams_and_verifies_converged_until_a_row_goes_missing() {
    let Some(machine) = Machine::new() else { return };
    let Pair {
        publisher,
        subscriber,
        pub_client,
        sub_client,
    } = replicated(&machine).await;
    let subscription = pg::subscription_name("shop", "subscriber");
    assert_eq!(subscription, "shop_subscriber");
    // The rows came by the initial sync, not by the schema file.
    assert_eq!(one::<i64>(&sub_client, "SELECT count(*) FROM books").await, 100);

    // Running it again (every `up` does) creates nothing twice.
    set_up(&publisher, &subscriber, &pub_client, &sub_client)
        .await
        .expect("setup_replication again");
    let subs: i64 = one(&sub_client, "SELECT count(*) FROM pg_subscription").await;
    assert_eq!(subs, 1);
    assert_eq!(one::<i64>(&sub_client, "SELECT count(*) FROM books").await, 100);

    let link = testkit::poll_async("the link to stream", Duration::from_secs(60), || async {
        let link = pg::link_status(&pub_client, Some(&sub_client), "shop", "subscriber")
            .await
            .expect("link_status");
        (link.state == "streaming").then_some(link)
    })
    .await;
    assert!(link.lag_bytes.is_some_and(|b| b >= 0), "{link:?}");
    let none = pg::link_status(&pub_client, None, "shop", "nobody")
        .await
        .expect("link_status");
    assert_eq!(none.state, "missing");

    let worker = pg::worker_state(&sub_client, &subscription)
        .await
        .expect("worker_state");
    assert_eq!(worker.errors, 0, "{worker:?}");
    assert!(worker.apply_pid.is_some(), "{worker:?}");
    assert_eq!(
        worker.retry_interval,
        Duration::from_secs(1),
        "prodhome's conf sets 1s"
    );

    let subs = [("subscriber", &sub_client)];
    let report = pg::verify("shop", ("publisher", &pub_client), &subs, Duration::from_secs(60))
        .await
        .expect("verify");
    assert!(report.converged, "{report:?}");
    assert!(report.probe_ms[0].1.is_some(), "{report:?}");
    assert_eq!(report.tables.len(), 1, "{report:?}");
    assert_eq!(report.tables[0].table, "public.books");
    assert_eq!(report.tables[0].publisher.rows, 100);
    assert!(report.drift.is_empty(), "{report:?}");

    // A row only the subscriber lost: no longer converged, and the key says which.
    sub_client
        .batch_execute("DELETE FROM books WHERE id = 7")
        .await
        .expect("delete on the subscriber");
    let report = pg::verify("shop", ("publisher", &pub_client), &subs, Duration::from_secs(60))
        .await
        .expect("verify");
    assert!(!report.converged, "{report:?}");
    assert!(!report.tables[0].subscribers[0].matches, "{report:?}");
    let diff = pg::key_diff(&pub_client, ("subscriber", &sub_client), "public.books")
        .await
        .expect("key_diff");
    assert_eq!(
        (diff.missing, diff.missing_keys.clone()),
        (1, vec!["7".to_string()])
    );
    assert_eq!(diff.unexpected, 0, "{diff:?}");
}

/// As under CloudNativePG: an operator made the publication and the
/// subscription (before any table existed); `made_elsewhere` applies the
/// schema, grants the replication role, refreshes that subscription and
/// waits for its sync, creating nothing of its own and leaving its
/// connection as the operator wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_made_elsewhere_gets_the_schema_and_is_waited_for() {
    let Some(machine) = Machine::new() else { return };
    let publisher = machine.start("publisher").await;
    let subscriber = machine.start("subscriber").await;
    let pub_client = publisher.bootstrapped().await;
    let sub_client = subscriber.bootstrapped().await;
    pub_client
        .batch_execute("CREATE PUBLICATION shop FOR ALL TABLES")
        .await
        .expect("the operator's publication");
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=postgres user={} password={}",
        publisher.spec.port,
        pg::REPLICATION_ROLE,
        publisher.spec.credentials.replication.expose()
    );
    sub_client
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION shop_subscriber CONNECTION '{conninfo}' PUBLICATION shop"
        ))
        .await
        .expect("the operator's subscription");
    set_up_with(&publisher, &subscriber, &pub_client, &sub_client, true)
        .await
        .expect("setup_replication, made elsewhere");
    assert_eq!(one::<i64>(&sub_client, "SELECT count(*) FROM books").await, 100);
    assert_eq!(
        one::<i64>(&sub_client, "SELECT count(*) FROM pg_subscription").await,
        1
    );
    let kept: String = sub_client
        .query_one("SELECT subconninfo FROM pg_subscription", &[])
        .await
        .expect("conninfo")
        .get(0);
    assert_eq!(kept, conninfo, "the operator's connection is left as it was");
    assert_eq!(
        one::<i64>(&pub_client, "SELECT count(*) FROM pg_publication").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_proofs_find_lost_keys_and_missing_slots() {
    let Some(machine) = Machine::new() else { return };
    let pair = replicated(&machine).await;
    let publisher = &pair.pub_client;

    let keys: Vec<String> = ["1", "2", "2", "1000"].map(String::from).to_vec();
    let ledger = pg::check_ledger(publisher, "public.books", &keys)
        .await
        .expect("check_ledger");
    assert_eq!(ledger.acknowledged, 3, "duplicates count once: {ledger:?}");
    assert_eq!(
        (ledger.lost, ledger.lost_keys.clone()),
        (1, vec!["1000".to_string()])
    );

    let slots = ["shop_subscriber", "nope_subscriber"].map(String::from);
    let checks = testkit::poll_async("the slot to be in use", Duration::from_secs(60), || async {
        let checks = pg::check_slots(publisher, &slots).await.expect("check_slots");
        checks[0].active.then_some(checks)
    })
    .await;
    assert!(checks[0].exists, "{checks:?}");
    assert!(!checks[1].exists && !checks[1].active, "{checks:?}");

    // A table without a one-column key cannot be proven by key.
    publisher
        .batch_execute("CREATE TABLE loose (a int, b int)")
        .await
        .expect("create");
    let e = pg::check_ledger(publisher, "public.loose", &keys)
        .await
        .expect_err("a table without a key was checked");
    assert!(e.to_string().contains("no one-column primary key"), "{e}");
    drop(pair.subscriber);
    drop(pair.publisher);
}
