//! `prodhome check`: the resolved lab without starting anything, secrets
//! hidden; every located problem and exit 1 for a bad lab; `--json`.
//! No Postgres needed.

use std::path::Path;

use serde_json::Value;
use testkit::TestLab;

use crate::{BIN, text};

/// Unlike the seed: other names, three nodes, a service chain, secrets,
/// an influx v2 sink, and values that must never be printed.
const SHOP: &str = r#"name = "shop"
seed = 9

[postgres.orders_db]
port = 24321
settings = { work_mem = "8MB" }
[postgres.replica_east]
[postgres.replica_west]

[replication.orders]
publisher = "orders_db"
subscribers = ["replica_east", "replica_west"]
schema = "orders.sql"
tables = ["orders", "line_items"]

[secret.api_token]
length = 19

[service.worker]
command = ["./worker", "--queue", "orders"]
depends_on = { api = "started" }

[service.api]
command = ["./api"]
env = { DATABASE_URL = "${postgres.orders_db.url}", TOKEN = "${secret.api_token}", STRIPE_KEY = "sk-literal-do-not-print" }
depends_on = { orders_db = "ready" }
ready = { tcp = 24400 }

[sample]
sinks = ["embedded", "influx"]
influx = { url = "http://127.0.0.1:8086", org = "acme", bucket = "lab", token_env = "SHOP_INFLUX_TOKEN" }

[alert]
webhook = "http://alerts:hunter2-pass@127.0.0.1:9000/hook"
"#;

const NEVER_SHOWN: &[&str] = &["influx-token-value-77", "sk-literal-do-not-print", "hunter2-pass"];

fn shop() -> TestLab {
    let lab = TestLab::new(BIN).lab(SHOP).file(
        "orders.sql",
        "create table orders (id int primary key);\ncreate table line_items (order_id int references orders, n int);\n",
    );
    // The services' programs must exist: check runs up's pre-start checks.
    for program in ["api", "worker"] {
        let path = lab.dir().join(program);
        std::fs::write(&path, "#!/bin/sh\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    lab
}

fn check(lab: &TestLab, args: &[&str]) -> (Option<i32>, String, String) {
    let out = lab
        .command()
        .arg("check")
        .args(args)
        .env("SHOP_INFLUX_TOKEN", "influx-token-value-77")
        .output()
        .expect("run prodhome check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), stdout, text(&out))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn check_prints_the_resolved_lab_with_secrets_hidden_and_starts_nothing() {
    let lab = shop();
    let before = entries(lab.dir());
    let (code, stdout, all) = check(&lab, &[]);
    assert_eq!(code, Some(0), "{all}");
    for want in [
        "lab shop is valid",
        "orders_db     port 24321",
        "work_mem = '8MB'",
        "replica_east  port auto",
        "orders: orders_db -> replica_east, replica_west; tables orders, line_items; schema orders.sql",
        "1. nodes orders_db, replica_east, replica_west, then replication",
        "2. api\n",
        "3. worker\n",
        "waits for orders_db ready",
        "env TOKEN=${secret.api_token}",
        "env STRIPE_KEY=***",
        "token from $SHOP_INFLUX_TOKEN (***)",
        "webhook http://alerts:***@127.0.0.1:9000/hook",
        "api_token = ***",
    ] {
        assert!(stdout.contains(want), "expected {want:?} in:\n{stdout}");
    }
    for secret in NEVER_SHOWN {
        assert!(!all.contains(secret), "{secret} was printed:\n{all}");
    }
    // A secret is a name only: not even its length.
    assert!(stdout.contains("\n  api_token = ***\n"), "{stdout}");
    assert_eq!(entries(lab.dir()), before, "check wrote into the lab directory");
    assert!(!lab.state().exists(), "check created the state directory");
    assert!(
        lab.processes().is_empty(),
        "check left processes: {:?}",
        lab.processes()
    );
}

#[test]
fn check_shows_the_port_an_earlier_up_kept() {
    let lab = shop();
    std::fs::create_dir_all(lab.state()).unwrap();
    let kept = r#"{"orders_db": 20001, "replica_east": 23456}"#;
    std::fs::write(lab.state().join("ports.json"), kept).unwrap();
    let (code, stdout, all) = check(&lab, &["--json"]);
    assert_eq!(code, Some(0), "{all}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json prints JSON");
    let nodes = &report["lab"]["nodes"];
    // The lab file's port wins over a kept one; a node without one keeps it.
    assert_eq!(
        nodes[0]["port"],
        serde_json::json!({"mode": "fixed", "port": 24321})
    );
    assert_eq!(
        nodes[1]["port"],
        serde_json::json!({"mode": "kept", "port": 23456})
    );
    assert_eq!(
        nodes[2]["port"],
        serde_json::json!({"mode": "auto", "port": null})
    );
    assert_eq!(entries(&lab.state()), ["ports.json"], "check wrote state");
}

#[test]
fn check_json_has_the_whole_lab() {
    let lab = shop();
    let (code, stdout, all) = check(&lab, &["--json"]);
    assert_eq!(code, Some(0), "{all}");
    let r: Value = serde_json::from_str(&stdout).expect("check --json prints JSON");
    assert_eq!(r["valid"], true);
    assert_eq!(r["errors"], serde_json::json!([]));
    let lab_ = &r["lab"];
    assert_eq!(lab_["name"], "shop");
    assert_eq!(lab_["postgres_version"], 15);
    assert_eq!(lab_["seed"], 9);
    assert_eq!(lab_["builtin_seed"], false);
    assert_eq!(lab_["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(
        lab_["replications"][0]["tables"],
        serde_json::json!(["orders", "line_items"])
    );
    assert_eq!(lab_["replications"][0]["schema"], "orders.sql");
    assert_eq!(
        lab_["start_order"]["services"],
        serde_json::json!([["api"], ["worker"]])
    );
    assert_eq!(
        lab_["services"][1]["depends_on"],
        serde_json::json!([["orders_db", "ready"]])
    );
    assert_eq!(lab_["sample"]["sinks"], serde_json::json!(["embedded", "influx"]));
    assert_eq!(lab_["sample"]["influx"]["token_env"], "SHOP_INFLUX_TOKEN");
    assert_eq!(lab_["sample"]["influx"]["token"], "***");
    assert_eq!(
        lab_["secrets"],
        serde_json::json!([{"name": "api_token", "value": "***"}])
    );
    for key in ["hum", "chaos", "alert", "api_port", "state_dir"] {
        assert!(lab_.get(key).is_some(), "no {key} in {lab_}");
    }
    for secret in NEVER_SHOWN {
        assert!(!all.contains(secret), "{secret} was printed:\n{all}");
    }
}

#[test]
fn check_of_a_bad_lab_exits_1_with_every_problem_located() {
    let bad = SHOP
        .replace(
            "subscribers = [\"replica_east\", \"replica_west\"]",
            "subscribers = [\"replica_east\", \"replica_north\"]",
        )
        .replace("schema = \"orders.sql\"", "schema = \"missing.sql\"")
        .replace("length = 19", "length = 3");
    let lab = TestLab::new(BIN).lab(&bad);
    let (code, stdout, all) = check(&lab, &[]);
    assert_eq!(code, Some(1), "{all}");
    for want in [
        "prodhome.toml:12:32: replication.orders.subscribers[1]: no postgres node \"replica_north\"",
        "prodhome.toml:13:10: replication.orders.schema: cannot read \"missing.sql\"",
        "prodhome.toml:17:10: secret.api_token.length: expected an integer from 8 to 256, found 3",
        "3 problems",
    ] {
        assert!(all.contains(want), "expected {want:?} in:\n{all}");
    }
    assert!(stdout.is_empty(), "errors go to stderr; stdout had:\n{stdout}");
    assert!(!lab.state().exists());

    let (code, stdout, all) = check(&lab, &["--json"]);
    assert_eq!(code, Some(1), "{all}");
    let r: Value = serde_json::from_str(&stdout).expect("check --json prints JSON for a bad lab too");
    assert_eq!(r["valid"], false);
    assert_eq!(r["lab"], Value::Null);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{r}");
    assert!(
        errors
            .iter()
            .all(|e| e["line"].as_u64() >= Some(1) && e["column"].as_u64() >= Some(1)),
        "{r}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["file"] == "prodhome.toml" || e["file"].as_str().unwrap().ends_with("/prodhome.toml")),
        "{r}"
    );
}

#[test]
fn check_names_a_lab_file_that_is_not_there() {
    let lab = TestLab::new(BIN);
    let (code, _, all) = check(&lab, &[]);
    // No prodhome.toml: the seed lab, which is valid.
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("lab bookstore is valid (the built-in seed lab)"),
        "{all}"
    );
    let out = lab.run(&["-f", "nope.toml", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot read lab file"), "{}", text(&out));
    assert!(text(&out).contains("prodhome init"), "{}", text(&out));
}
