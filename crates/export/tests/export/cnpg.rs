//! `export k8s --cnpg`: the nodes as CloudNativePG clusters, each
//! replication as its Publication and one Subscription per subscriber.
//! Not validated against CNPG's CRDs: they are not available offline here.

use export::Target;
use serde_yaml::Value;

use crate::{NODES, assert_no_password, docs, shop};

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| o["kind"].as_str() == Some(kind))
        .collect()
}

#[test]
fn clusters_publications_and_subscriptions_follow_the_lab() {
    let bundle = shop(Target::K8s { cnpg: true });
    assert!(bundle.file("nodes.yaml").is_none(), "CNPG runs the nodes");
    assert_no_password(&bundle, "cnpg.yaml");
    let objects = docs(&bundle, "cnpg.yaml");
    assert!(
        objects
            .iter()
            .all(|o| o["apiVersion"].as_str() == Some("postgresql.cnpg.io/v1"))
    );
    let clusters = of_kind(&objects, "Cluster");
    assert_eq!(clusters.len(), NODES.len());
    let replica_a = clusters
        .iter()
        .find(|c| c["metadata"]["name"].as_str() == Some("replica-a"))
        .unwrap();
    let external: Vec<&str> = replica_a["spec"]["externalClusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(external, ["orders-db", "stock-db"], "both of its publishers");
    let orders = clusters[0];
    assert_eq!(
        orders["spec"]["postgresql"]["parameters"]["work_mem"].as_str(),
        Some("8MB")
    );
    assert_eq!(
        orders["spec"]["postgresql"]["parameters"]["wal_level"].as_str(),
        Some("logical")
    );

    let publications = of_kind(&objects, "Publication");
    assert_eq!(publications.len(), 2);
    let items = &publications[0]["spec"]["target"]["objects"][1]["table"];
    assert_eq!(
        (items["schema"].as_str(), items["name"].as_str()),
        (Some("sales"), Some("items"))
    );

    let subscriptions = of_kind(&objects, "Subscription");
    let names: Vec<&str> = subscriptions
        .iter()
        .map(|s| s["spec"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders_replica_a", "orders_replica_b", "stock_replica_a"]);
    assert_eq!(
        subscriptions[2]["spec"]["externalClusterName"].as_str(),
        Some("stock-db")
    );

    // CNPG reads passwords from basic-auth Secrets, in the 0600 file.
    let secrets = docs(&bundle, "secrets.yaml");
    let auth = secrets
        .iter()
        .find(|s| s["metadata"]["name"].as_str() == Some("stock-db-replication-auth"))
        .unwrap();
    assert_eq!(auth["type"].as_str(), Some("kubernetes.io/basic-auth"));
    assert_eq!(auth["stringData"]["username"].as_str(), Some("prodhome_repl"));
}
