use super::*;

/// A publisher and a subscriber on the lab network: the subscription names
/// the publisher by its container name; rows inserted from the host (through
/// the 127.0.0.1 ports) arrive; a partition, a pause and a SIGKILL of the
/// publisher are each seen, and the rows still arrive after each.
#[tokio::test]
async fn a_subscriber_replicates_from_its_publisher_by_container_name() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    let lab = Lab {
        name: unique("repl"),
        engine: engine.clone(),
    };
    let (publisher, pub_port, pub_client) = node(&engine, &lab.name, "pub").await;
    let (subscriber, _, sub_client) = node(&engine, &lab.name, "sub").await;
    pub_client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION p FOR TABLE t; INSERT INTO t SELECT generate_series(1, 100)")
        .await
        .unwrap();
    let conninfo = format!("host={publisher} port=5432 user=postgres dbname=postgres");
    sub_client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    // CREATE SUBSCRIPTION cannot run in the implicit transaction of a batch.
    sub_client
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION s CONNECTION '{conninfo}' PUBLICATION p"
        ))
        .await
        .unwrap();
    rows_arrive(&sub_client, 100).await;

    // Partition: the node leaves the lab network, so the subscriber can no
    // longer reach it by name (nor the host through its published port).
    engine.partition(&lab.name, "pub").await.unwrap();
    let probe = ["pg_isready", "-t", "2", "-h", publisher.as_str(), "-p", "5432"];
    poll("the partition to cut the link", READY, || async {
        (!engine.exec(&subscriber, &probe).await.ok()?.success()).then_some(())
    })
    .await;
    engine.reconnect(&lab.name, "pub").await.unwrap();
    let pub_client = poll("the publisher reachable again", READY, || connect_pg(pub_port)).await;
    pub_client
        .batch_execute("INSERT INTO t SELECT generate_series(101, 200)")
        .await
        .unwrap();
    rows_arrive(&sub_client, 200).await;

    // Pause: the engine says so, and the publisher stops answering.
    engine.pause(&publisher).await.unwrap();
    assert!(engine.inspect(&publisher).await.unwrap().paused);
    assert!(!engine.exec(&subscriber, &probe).await.unwrap().success());
    engine.unpause(&publisher).await.unwrap();
    pub_client
        .batch_execute("INSERT INTO t SELECT generate_series(201, 300)")
        .await
        .unwrap();
    rows_arrive(&sub_client, 300).await;

    // SIGKILL: the container exits 137; started again, its volume kept the rows.
    engine.kill(&publisher, "SIGKILL").await.unwrap();
    assert_eq!(engine.wait_exit(&publisher).await.unwrap(), 137);
    let state = engine.inspect(&publisher).await.unwrap();
    assert!(!state.running && state.exit_code == 137, "{state:?}");
    engine.start(&publisher, pub_port).await.unwrap();
    let pub_client = poll("the publisher back after SIGKILL", READY, || connect_pg(pub_port)).await;
    assert_eq!(count(&pub_client).await, Some(300));
    pub_client
        .batch_execute("INSERT INTO t SELECT generate_series(301, 400)")
        .await
        .unwrap();
    rows_arrive(&sub_client, 400).await;
}

async fn rows_arrive(sub: &tokio_postgres::Client, n: i64) {
    poll(&format!("{n} rows on the subscriber"), READY, || async {
        (count(sub).await? == n).then_some(())
    })
    .await;
}
