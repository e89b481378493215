//! Tables prodhome creates itself (hum's books, pgbench's tables) reach the
//! subscribers of every replication that publishes them, on labs unlike
//! the seed: other node names, `tables = "all"`, no schema file.

use serde_json::Value;
use std::time::Duration;

use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

/// Three nodes with names of their own, every table published, no schema.
pub(crate) const ALL_TABLES: &str = r#"name = "shop"
[postgres.main]
[postgres.replica_a]
[postgres.replica_b]
[replication.everything]
publisher = "main"
subscribers = ["replica_a", "replica_b"]
tables = "all"
"#;

pub(crate) const REPLICAS: [&str; 2] = ["replica_a", "replica_b"];

fn count(lab: &TestLab, node: &str, table: &str) -> u64 {
    lab.sql(node, &format!("select count(*) from {table}"))
        .parse()
        .unwrap_or_else(|e| panic!("count of {table} on {node}: {e}"))
}

#[test]
fn hum_init_of_tpcb_on_an_all_tables_publisher_reaches_every_replica() {
    let lab = TestLab::new(BIN).lab(ALL_TABLES);
    lab.up();
    let out = lab.run(&[
        "hum",
        "--node",
        "main",
        "--init",
        "--workload",
        "tpcb",
        "--scale",
        "1",
        "--transactions",
        "200",
    ]);
    assert_success(&out, "hum --init --workload tpcb");
    let out = lab.run(&["verify", "--timeout", "60s"]);
    assert!(out.status.success(), "verify after hum --init: {}", text(&out));
    assert_eq!(count(&lab, "main", "pgbench_accounts"), 100_000);
    assert_eq!(count(&lab, "main", "pgbench_history"), 200);
    for replica in REPLICAS {
        assert_eq!(count(&lab, replica, "pgbench_accounts"), 100_000, "{replica}");
        assert_eq!(count(&lab, replica, "pgbench_history"), 200, "{replica}");
    }

    // A second init drops and recreates the tables with new rows (another
    // scale): the replicas' copies start over too, and end equal.
    let out = lab.run(&[
        "hum",
        "--node",
        "main",
        "--init",
        "--workload",
        "tpcb",
        "--scale",
        "2",
    ]);
    assert_success(&out, "hum --init --scale 2");
    let out = lab.run(&["verify", "--timeout", "60s", "--json"]);
    assert!(out.status.success(), "verify after a fresh init: {}", text(&out));
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof["converged"], true, "{proof}");
    for replica in REPLICAS {
        assert_eq!(count(&lab, replica, "pgbench_accounts"), 200_000, "{replica}");
        assert_eq!(count(&lab, replica, "pgbench_history"), 0, "{replica}");
    }
}

#[test]
fn a_lab_with_hum_on_an_all_tables_replication_comes_up_and_verifies() {
    // books, not tpcb: verify compares checksums one node after the other,
    // which 100,000 accounts updated all the time never let match.
    let toml = format!("{ALL_TABLES}[hum]\nnode = \"main\"\nworkload = \"books\"\nclients = 1\nrate = 20\n");
    let lab = TestLab::new(BIN).lab(&toml);
    lab.up();
    let out = lab.run(&["verify", "--timeout", "60s", "--json"]);
    assert!(out.status.success(), "verify with hum running: {}", text(&out));
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables: Vec<&str> = proof["replications"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert!(tables.contains(&"public.books"), "{tables:?}");
    // hum's inserts keep arriving on both replicas.
    for replica in REPLICAS {
        poll(
            &format!("hum's books on {replica}"),
            Duration::from_secs(30),
            || (count(&lab, replica, "books") > 0).then_some(()),
        );
    }
    // Every link still streams: no apply worker died on an unknown table.
    let status = lab.status();
    for link in status["replication"].as_array().unwrap() {
        assert_eq!(link["state"], "streaming", "{link}");
    }
}

#[test]
fn a_replica_that_cannot_copy_hums_table_fails_the_init_naming_it_and_why() {
    let lab = TestLab::new(BIN).lab(ALL_TABLES);
    lab.up();
    // replica_a has a books of its own that lacks columns the publisher's has.
    lab.sql(
        "replica_a",
        "create table books (id bigint primary key, title text, author text, updated_at timestamptz)",
    );
    let out = lab.run(&["hum", "--node", "main", "--init", "--workload", "books"]);
    assert!(!out.status.success(), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("subscriber replica_a could not copy books from main")
            && message.contains("\"price\", \"stock\"")
            && message.contains("prodhome logs replica_a"),
        "{message}"
    );
    // The other replica got its copy.
    assert_eq!(
        lab.sql("replica_b", "select to_regclass('books') is not null"),
        "t"
    );
}
