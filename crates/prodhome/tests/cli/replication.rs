//! A bigger lab: one publisher, three subscribers, two replicated tables;
//! and verify's report when a subscriber really differs.

use testkit::TestLab;

use crate::{BIN, text};

const LAB: &str = r#"
name = "shop"

[postgres.primary]
settings = { max_connections = 50 }

[postgres.east]
[postgres.west]
[postgres.north]

[replication.catalog]
publisher = "primary"
subscribers = ["east", "west", "north"]
schema = "catalog.sql"
tables = ["authors", "shop.orders"]
"#;

const SCHEMA: &str = "
create table authors (id int primary key, name text not null);
create schema shop;
create table shop.orders (id bigint primary key, author_id int references authors, qty int not null);
create table not_replicated (id int primary key);
";

#[test]
fn one_publisher_three_subscribers_two_tables_converge_and_divergence_is_reported() {
    let lab = TestLab::new(BIN).lab(LAB).file("catalog.sql", SCHEMA);
    lab.up();
    let status = lab.status();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(status["replication"].as_array().unwrap().len(), 3);
    assert_eq!(lab.sql("primary", "show max_connections"), "50");

    lab.sql(
        "primary",
        "insert into authors select g, 'author ' || g from generate_series(1, 50) g",
    );
    lab.sql(
        "primary",
        "insert into shop.orders select g, 1 + g % 50, g from generate_series(1, 2000) g",
    );
    lab.sql("primary", "insert into not_replicated values (1)");
    let out = lab.run(&["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("replication catalog: converged"), "{report}");
    assert!(
        report.contains("public.authors") && report.contains("shop.orders"),
        "{report}"
    );
    assert!(!report.contains("not_replicated"), "{report}");
    assert_eq!(lab.sql("north", "select count(*) from not_replicated"), "0");

    // A subscriber that lost rows behind replication's back must fail
    // verify, naming the table, the node and the difference.
    lab.sql("west", "delete from shop.orders where id <= 10");
    let out = lab.run(&["verify", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("replication catalog: NOT converged"), "{report}");
    let west_line = report
        .lines()
        .find(|l| l.contains("west") && l.contains("DIFFERS"))
        .unwrap_or_default();
    assert!(
        west_line.contains("1990") && west_line.contains("-10 rows"),
        "{report}"
    );
}
