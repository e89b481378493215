//! The DDL queue: a publisher records DDL while recording is on, and a
//! subscriber applies a change once and remembers it.

use crate::server::{Machine, one};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_recorded_on_a_publisher_is_applied_once_on_a_subscriber() {
    let Some(machine) = Machine::new() else { return };
    let publisher = machine.start("publisher").await;
    let subscriber = machine.start("subscriber").await;
    let pub_client = publisher.bootstrapped().await;
    let mut sub_client = subscriber.bootstrapped().await;

    pg::ddl::install(&pub_client, "publisher", true)
        .await
        .expect("install");
    // Twice is the same as once: every `up` installs it.
    pg::ddl::install(&pub_client, "publisher", true)
        .await
        .expect("install again");
    // prodhome's own sessions' DDL is not the user's: not queued.
    pub_client
        .batch_execute("CREATE TABLE own (id int)")
        .await
        .expect("create as prodhome");
    assert!(
        pg::ddl::pending(&pub_client, "publisher", 0, 100)
            .await
            .expect("pending")
            .is_empty()
    );
    let user = publisher.user_session().await;
    user.batch_execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text)")
        .await
        .expect("create on the publisher");

    let changes = pg::ddl::pending(&pub_client, "publisher", 0, 100)
        .await
        .expect("pending");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert!(change.created_tables(), "{change:?}");
    assert!(change.tables.contains(&"public.notes".to_string()), "{change:?}");
    assert!(
        change.summary().starts_with("CREATE TABLE notes"),
        "{}",
        change.summary()
    );
    let statements = pg::ddl::statements(change).expect("statements");
    assert_eq!(statements.len(), 1, "{statements:?}");

    assert!(
        !pg::ddl::relation_exists(&sub_client, "public.notes")
            .await
            .expect("exists")
    );
    assert_eq!(
        pg::ddl::applied(&sub_client, "subscriber", "publisher")
            .await
            .expect("applied"),
        0
    );
    pg::ddl::apply(&mut sub_client, "subscriber", "publisher", change)
        .await
        .expect("apply");
    assert!(
        pg::ddl::relation_exists(&sub_client, "public.notes")
            .await
            .expect("exists")
    );
    let applied = pg::ddl::applied(&sub_client, "subscriber", "publisher")
        .await
        .expect("applied");
    assert_eq!(applied, change.last_id);
    // Applying it again fails (the table exists) and changes nothing.
    let again = pg::ddl::apply(&mut sub_client, "subscriber", "publisher", change).await;
    let e = again.expect_err("applied twice");
    assert!(e.to_string().contains("on subscriber"), "{e}");
    let tables: i64 = one(
        &sub_client,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'",
    )
    .await;
    assert_eq!(tables, 1);

    // Nothing is queued after it; with recording off, new DDL is not either.
    pg::ddl::install(&pub_client, "publisher", false)
        .await
        .expect("uninstall");
    user.batch_execute("CREATE TABLE scratch (id int)")
        .await
        .expect("create");
    let later = pg::ddl::pending(&pub_client, "publisher", change.last_id, 100)
        .await
        .expect("pending");
    assert!(later.is_empty(), "{later:?}");
    pg::ddl::skip(&sub_client, "subscriber", "publisher", change.last_id + 5)
        .await
        .expect("skip");
    let applied = pg::ddl::applied(&sub_client, "subscriber", "publisher")
        .await
        .expect("applied");
    assert_eq!(applied, change.last_id + 5);
}
