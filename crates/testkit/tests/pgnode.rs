//! PgNode itself: starts, answers, survives a crash, cleans up.

use testkit::PgNode;

#[test]
fn pg_node_starts_answers_and_restarts_after_kill9() {
    let mut node = PgNode::start_with(&["max_connections=40"]);
    assert_eq!(node.sql("show max_connections"), "40");
    node.sql("create table t (id int primary key); insert into t values (1)");
    let before = node.pid();
    node.crash_and_restart();
    assert_ne!(node.pid(), before);
    assert_eq!(node.sql("select count(*) from t"), "1");
}
