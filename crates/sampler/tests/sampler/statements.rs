//! Top statements from pg_stat_statements: a statement run on purpose
//! shows with its text, and a node where the extension is preloaded but
//! not created yields nothing and no error.

use testkit::PgNode;

use crate::util::{find, options, target, value};
use sampler::Sampler;

const PRELOAD: &[&str] = &[
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=top",
];

#[tokio::test]
async fn a_statement_run_on_purpose_shows_among_the_top_statements() {
    let node = PgNode::start_with(PRELOAD);
    node.sql("CREATE EXTENSION pg_stat_statements");
    // Slow enough (pg_sleep) to be the top statement by total time.
    node.sql("SELECT pg_sleep(0.2), 'top-statement-marker'");
    let mut sampler = Sampler::new(options(vec![target("n", &node)])).unwrap();
    let points = sampler.sample_once().await;
    assert!(find(&points, "sample_errors", "n", &[]).is_empty(), "{points:#?}");
    let tops = find(&points, "pg_statements", "n", &[]);
    assert!(!tops.is_empty() && tops.len() <= 10, "{points:#?}");
    let ours = tops
        .iter()
        .find(|p| p.tags["text"].contains("pg_sleep"))
        .unwrap_or_else(|| panic!("no pg_sleep statement among {tops:#?}"));
    // Normalised: constants are parameters.
    assert!(!ours.tags["text"].contains("marker"), "{ours:#?}");
    assert_eq!(ours.tags["query"].len(), 12);
    let tags = [("query", ours.tags["query"].as_str())];
    assert_eq!(value(&points, "pg_statements", "n", &tags, "calls"), Some(1.0));
    assert!(value(&points, "pg_statements", "n", &tags, "total_ms").unwrap() >= 200.0);
    assert!(value(&points, "pg_statements", "n", &tags, "mean_ms").unwrap() >= 200.0);
    // Sorted by total time, pg_sleep's 200 ms lead a quiet node.
    let most = tops
        .iter()
        .max_by(|a, b| {
            let t = |p: &&&model::Point| match p.fields["total_ms"] {
                model::FieldValue::F64(f) => f,
                _ => 0.0,
            };
            t(a).total_cmp(&t(b))
        })
        .unwrap();
    assert_eq!(most.tags["query"], ours.tags["query"]);
}

#[tokio::test]
async fn a_node_without_the_extension_created_yields_no_statements_and_no_error() {
    let node = PgNode::start_with(PRELOAD);
    let mut sampler = Sampler::new(options(vec![target("n", &node)])).unwrap();
    for _ in 0..2 {
        let points = sampler.sample_once().await;
        assert!(find(&points, "sample_errors", "n", &[]).is_empty(), "{points:#?}");
        assert!(find(&points, "pg_statements", "n", &[]).is_empty());
        assert_eq!(value(&points, "sampler", "n", &[], "errors"), Some(0.0));
    }
    assert!(sampler.take_events().is_empty());
}
