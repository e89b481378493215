//! A new subscription's initial copy: left out when the published tables
//! are empty (with the columns checked instead), taken after all when rows
//! commit while the slot is made, and taken for a table a lab's list gained
//! on a later `up`.

use std::path::Path;
use std::time::Duration;

use pg::{ReplicationSpec, SchemaSpec, SubscriberSpec};
use tokio_postgres::Client;

use crate::server::{Machine, Server, one};

/// Two tables, no rows; a generated column, which Postgres does not send
/// (each side computes its own).
const EMPTY: &str = "CREATE TABLE parts (id int PRIMARY KEY, name text,
  shout text GENERATED ALWAYS AS (upper(name)) STORED);
CREATE TABLE bins (id int PRIMARY KEY, label text);
";

/// `replication` "depot" from `publisher` to `subscriber` of `tables`, with
/// `schema` (when any) applied first.
async fn set_up(
    publisher: (&Server, &Client),
    subscriber: (&Server, &Client),
    schema: Option<&str>,
    tables: &[String],
) -> Result<Vec<String>, pg::Error> {
    let spec = ReplicationSpec {
        name: "depot",
        publisher: &publisher.0.spec,
        subscribers: vec![SubscriberSpec {
            node: &subscriber.0.spec,
            client: subscriber.1,
            publisher_host: "127.0.0.1".into(),
            publisher_port: publisher.0.spec.port,
            log: subscriber.0.log.clone(),
        }],
        schema: schema.map(|sql| SchemaSpec {
            path: Path::new("depot.sql"),
            sql,
        }),
        tables: Some(tables),
        made_elsewhere: false,
    };
    pg::setup_replication(&spec, publisher.1, Duration::from_secs(120)).await
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Tables whose subscription state came by a copy (a sync records the LSN
/// it ended at; a table subscribed without a copy has none).
async fn copied(sub: &Client) -> Vec<String> {
    sub.query(
        "SELECT r.srrelid::regclass::text FROM pg_subscription_rel r WHERE r.srsublsn IS NOT NULL ORDER BY 1",
        &[],
    )
    .await
    .expect("subscription tables")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn pair(machine: &Machine) -> (Server, Server, Client, Client) {
    let publisher = machine.start("publisher").await;
    let subscriber = machine.start("subscriber").await;
    let pub_client = publisher.bootstrapped().await;
    let sub_client = subscriber.bootstrapped().await;
    (publisher, subscriber, pub_client, sub_client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_tables_are_subscribed_without_a_copy_and_rows_written_after_arrive() {
    let Some(machine) = Machine::new() else { return };
    let (publisher, subscriber, pub_client, sub_client) = pair(&machine).await;
    let carried = set_up(
        (&publisher, &pub_client),
        (&subscriber, &sub_client),
        Some(EMPTY),
        &names(&["parts", "bins"]),
    )
    .await
    .expect("setup_replication");
    assert_eq!(carried, names(&["prodhome.probe", "public.bins", "public.parts"]));
    let states: String = one(
        &sub_client,
        "SELECT string_agg(srsubstate::text, '' ORDER BY srrelid) FROM pg_subscription_rel",
    )
    .await;
    assert_eq!(states, "rrr", "every table ready at once");
    assert!(copied(&sub_client).await.is_empty(), "nothing was copied");

    pub_client
        .batch_execute("INSERT INTO parts SELECT g, 'part ' || g FROM generate_series(1, 25) g")
        .await
        .expect("rows on the publisher");
    testkit::poll_async("the rows to arrive", Duration::from_secs(60), || async {
        let n: i64 = one(&sub_client, "SELECT count(*) FROM parts").await;
        (n == 25).then_some(())
    })
    .await;
    let shout: String = one(&sub_client, "SELECT shout FROM parts WHERE id = 7").await;
    assert_eq!(shout, "PART 7", "computed on the subscriber");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_with_rows_are_copied() {
    let Some(machine) = Machine::new() else { return };
    let (publisher, subscriber, pub_client, sub_client) = pair(&machine).await;
    let schema = format!("{EMPTY}INSERT INTO bins VALUES (1, 'top shelf');\n");
    set_up(
        (&publisher, &pub_client),
        (&subscriber, &sub_client),
        Some(&schema),
        &names(&["parts", "bins"]),
    )
    .await
    .expect("setup_replication");
    assert_eq!(one::<i64>(&sub_client, "SELECT count(*) FROM bins").await, 1);
    assert_eq!(
        copied(&sub_client).await,
        names(&["bins", "parts", "prodhome.probe"])
    );
}

/// The copy is where Postgres checks the subscriber's columns; without it,
/// the check is prodhome's, before anything is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_without_a_published_column_is_refused_before_anything_is_made() {
    let Some(machine) = Machine::new() else { return };
    let (publisher, subscriber, pub_client, sub_client) = pair(&machine).await;
    pub_client
        .batch_execute("CREATE TABLE parts (id int PRIMARY KEY, name text, weight int)")
        .await
        .expect("publisher's table");
    sub_client
        .batch_execute("CREATE TABLE parts (id int PRIMARY KEY, name text GENERATED ALWAYS AS ('x') STORED)")
        .await
        .expect("subscriber's table");
    let e = set_up(
        (&publisher, &pub_client),
        (&subscriber, &sub_client),
        None,
        &names(&["parts"]),
    )
    .await
    .expect_err("a subscriber without the columns was subscribed");
    let text = e.to_string();
    assert!(
        text.contains(
            "subscriber cannot take what publisher publishes: public.parts has no column name, weight"
        ),
        "{text}"
    );
    assert_eq!(
        one::<i64>(&sub_client, "SELECT count(*) FROM pg_subscription").await,
        0
    );
    assert_eq!(
        one::<i64>(&pub_client, "SELECT count(*) FROM pg_replication_slots").await,
        0
    );
}

/// A row committed while the subscription's slot waits for the running
/// transactions to end is before the slot's start, so streaming would
/// never bring it: the subscription is made again, with the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_committed_while_the_slot_is_made_are_copied() {
    let Some(machine) = Machine::new() else { return };
    let (publisher, subscriber, pub_client, sub_client) = pair(&machine).await;
    pub_client.batch_execute(EMPTY).await.expect("tables");
    sub_client.batch_execute(EMPTY).await.expect("tables");
    let writer = publisher.user_session().await;
    writer
        .batch_execute("BEGIN; INSERT INTO parts VALUES (1, 'in flight')")
        .await
        .expect("an open transaction with a row");
    let commit_when_the_slot_waits = async {
        testkit::poll_async("the slot to wait for the open transaction", Duration::from_secs(60), || async {
            let waiting: i64 = one(
                &pub_client,
                "SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'walsender' AND wait_event_type = 'Lock' AND wait_event = 'transactionid'",
            )
            .await;
            (waiting > 0).then_some(())
        })
        .await;
        writer.batch_execute("COMMIT").await.expect("commit");
    };
    let tables = names(&["parts", "bins"]);
    let (made, ()) = tokio::join!(
        set_up(
            (&publisher, &pub_client),
            (&subscriber, &sub_client),
            None,
            &tables
        ),
        commit_when_the_slot_waits
    );
    made.expect("setup_replication");
    assert_eq!(
        one::<String>(&sub_client, "SELECT string_agg(name, ',') FROM parts").await,
        "in flight"
    );
    assert_eq!(
        one::<i64>(&sub_client, "SELECT count(*) FROM pg_subscription").await,
        1
    );
    assert!(copied(&sub_client).await.contains(&"parts".to_string()));
}

/// A lab file whose list of tables grew: the existing subscription takes
/// the new table in, rows and all, on the next `up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_added_to_the_list_is_copied_by_the_next_setup() {
    let Some(machine) = Machine::new() else { return };
    let (publisher, subscriber, pub_client, sub_client) = pair(&machine).await;
    let schema = format!("{EMPTY}INSERT INTO bins SELECT g, 'bin ' || g FROM generate_series(1, 10) g;\n");
    let ends = ((&publisher, &pub_client), (&subscriber, &sub_client));
    set_up(ends.0, ends.1, Some(&schema), &names(&["parts"]))
        .await
        .expect("setup_replication");
    assert_eq!(one::<i64>(&sub_client, "SELECT count(*) FROM bins").await, 0);
    let carried = set_up(ends.0, ends.1, Some(&schema), &names(&["parts", "bins"]))
        .await
        .expect("setup_replication with bins");
    assert!(carried.contains(&"public.bins".to_string()), "{carried:?}");
    assert_eq!(one::<i64>(&sub_client, "SELECT count(*) FROM bins").await, 10);
    assert_eq!(
        one::<i64>(&sub_client, "SELECT count(*) FROM pg_subscription").await,
        1
    );
}
