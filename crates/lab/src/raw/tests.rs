//! The raw reader's own tests: spans, shapes and the did-you-mean distance.

use super::*;

/// The key lists used in messages must be exactly what serde accepts.
#[test]
fn key_lists_match_the_serde_types() {
    /// The keys serde lists after "expected" for an unknown one.
    fn serde_keys<T: DeserializeOwned + fmt::Debug>() -> Vec<String> {
        let error = toml::from_str::<T>("zzz = 1").unwrap_err();
        let (_, expected) = error.message().split_once("expected").unwrap();
        expected.split('`').skip(1).step_by(2).map(String::from).collect()
    }
    assert_eq!(serde_keys::<RawLab>(), LAB_KEYS);
    assert_eq!(serde_keys::<RawNode>(), NODE_KEYS);
    assert_eq!(serde_keys::<RawReplication>(), REPLICATION_KEYS);
    assert_eq!(serde_keys::<RawHum>(), HUM_KEYS);
    assert_eq!(serde_keys::<RawSample>(), SAMPLE_KEYS);
    assert_eq!(serde_keys::<RawChaos>(), CHAOS_KEYS);
    assert_eq!(serde_keys::<RawService>(), SERVICE_KEYS);
    assert_eq!(serde_keys::<RawSecret>(), SECRET_KEYS);
    assert_eq!(serde_keys::<RawAlert>(), ALERT_KEYS);
}

#[test]
fn nodes_come_in_file_order() {
    let doc = read("[postgres.b]\n[postgres.a]\n[postgres.c]\nport = 1\n").unwrap();
    let names: Vec<_> = doc.nodes.iter().map(|n| n.name.get_ref().as_str()).collect();
    assert_eq!(names, ["b", "a", "c"]);
    assert_eq!(doc.nodes[0].name.span(), 10..11);
    let port = doc.nodes[2].body.as_ref().unwrap().port.as_ref().unwrap();
    assert_eq!(*port.get_ref(), Int(1));
    assert!(doc.problems.is_empty());
}

#[test]
fn every_bad_key_in_a_table_is_reported_and_the_rest_still_read() {
    let src = "[postgres.a]\nprot = 1\nport = 5\nsettngs = {}\n";
    let doc = read(src).unwrap();
    let spans: Vec<_> = doc.problems.iter().map(|p| &src[p.span.clone()]).collect();
    assert_eq!(spans, ["prot", "settngs"]);
    assert_eq!(doc.problems[0].help.as_deref(), Some("did you mean `port`?"));
    let node = doc.nodes[0].body.as_ref().unwrap();
    assert_eq!(*node.port.as_ref().unwrap().get_ref(), Int(5));
}

#[test]
fn wrong_types_are_located_at_the_value() {
    let src = "[replication.r]\nsubscribers = [\"a\", 7]\n";
    let doc = read(src).unwrap();
    assert_eq!(doc.problems.len(), 1);
    assert_eq!(&src[doc.problems[0].span.clone()], "7");
    assert_eq!(
        doc.problems[0].message,
        "replication.r.subscribers: expected a string, found integer `7`"
    );
    assert_eq!(doc.replications[0].failed, ["subscribers"]);
}

#[test]
fn typos_get_a_suggestion() {
    assert_eq!(closest("subscriber", REPLICATION_KEYS), Some("subscribers"));
    assert_eq!(closest("colour", REPLICATION_KEYS), None);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}
