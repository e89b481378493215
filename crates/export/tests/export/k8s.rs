//! `export k8s`: the manifests' shape, and kubernetes-validate's strict
//! check against the official schemas of two Kubernetes versions, where a
//! kind it has no schema for counts as a failure.

use std::path::Path;
use std::process::Command;

use export::Target;

use crate::{NODES, assert_no_password, docs, shop, tool, written};

/// The versions the manifests are checked against: the oldest and a new
/// one kubernetes-validate ships schemas for.
const VERSIONS: &[&str] = &["1.30.0", "1.35.0"];

/// kubernetes-validate's verdict on `files`: `Ok(resources passed)`, or
/// what failed. It only warns (exit 0) on a kind it has no schema for;
/// that is a failure here.
fn validate(files: &[&Path], version: &str) -> Option<Result<usize, String>> {
    let tool = tool("kubernetes-validate")?;
    let out = Command::new(tool)
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let warned = text
        .lines()
        .any(|l| l.starts_with("WARN") || l.starts_with("ERROR"));
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    Some(if out.status.success() && !warned && passed > 0 {
        Ok(passed)
    } else {
        Err(text)
    })
}

fn skip_without_validator() {
    testkit::skip("kubernetes-validate is not installed (python3 -m pip install kubernetes-validate)");
}

#[test]
fn manifests_pass_strict_validation_for_two_kubernetes_versions() {
    let bundle = shop(Target::K8s { cnpg: false });
    let dir = written(&bundle);
    let files: Vec<_> = ["secrets.yaml", "config.yaml", "nodes.yaml", "controller.yaml"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let objects: usize = ["secrets.yaml", "config.yaml", "nodes.yaml", "controller.yaml"]
        .iter()
        .map(|f| docs(&bundle, f).len())
        .sum();
    for version in VERSIONS {
        match validate(&files, version) {
            None => return skip_without_validator(),
            Some(Ok(passed)) => assert_eq!(passed, objects, "every object checked against {version}"),
            Some(Err(text)) => panic!("kubernetes-validate {version}:\n{text}"),
        }
    }
}

/// The check can fail: one misspelled field, and strict mode refuses it.
#[test]
fn a_misspelled_field_fails_the_validation() {
    let bundle = shop(Target::K8s { cnpg: false });
    let dir = written(&bundle);
    let nodes = dir.path().join("nodes.yaml");
    let text = std::fs::read_to_string(&nodes).unwrap();
    assert!(text.contains("  replicas: 1"));
    std::fs::write(&nodes, text.replacen("  replicas: 1", "  replicaz: 1", 1)).unwrap();
    match validate(&[&nodes], VERSIONS[0]) {
        None => skip_without_validator(),
        Some(Ok(_)) => panic!("a misspelled field passed strict validation"),
        Some(Err(text)) => assert!(text.contains("replicaz"), "{text}"),
    }
}

/// A kind without a schema (CNPG's, here) is a failure, not a pass.
#[test]
fn a_kind_without_a_schema_counts_as_a_failure() {
    let bundle = shop(Target::K8s { cnpg: true });
    let dir = written(&bundle);
    match validate(&[&dir.path().join("cnpg.yaml")], VERSIONS[1]) {
        None => skip_without_validator(),
        Some(Ok(_)) => panic!("CNPG's kinds have no schema here, yet they passed"),
        Some(Err(text)) => assert!(text.contains("Couldn't find schema"), "{text}"),
    }
}

#[test]
fn each_node_is_a_stateful_set_with_its_headless_service_and_claim() {
    let bundle = shop(Target::K8s { cnpg: false });
    assert_no_password(&bundle, "nodes.yaml");
    assert_no_password(&bundle, "controller.yaml");
    assert_no_password(&bundle, "config.yaml");
    assert_eq!(bundle.file("secrets.yaml").unwrap().mode, 0o600);
    let nodes = docs(&bundle, "nodes.yaml");
    assert_eq!(nodes.len(), 2 * NODES.len());
    for (i, node) in NODES.iter().enumerate() {
        let name = node.replace('_', "-");
        let (service, set) = (&nodes[2 * i], &nodes[2 * i + 1]);
        assert_eq!(service["kind"].as_str(), Some("Service"));
        assert_eq!(service["metadata"]["name"].as_str(), Some(name.as_str()));
        assert_eq!(service["spec"]["clusterIP"].as_str(), Some("None"));
        assert_eq!(set["kind"].as_str(), Some("StatefulSet"));
        assert_eq!(set["spec"]["serviceName"].as_str(), Some(name.as_str()));
        assert_eq!(
            set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as_str(),
            Some("data")
        );
        let container = &set["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["image"].as_str(),
            Some("prodhome/postgres:15-4e163bfd695f")
        );
        let probe = &container["readinessProbe"]["exec"]["command"];
        assert!(
            probe
                .as_sequence()
                .unwrap()
                .iter()
                .any(|a| a.as_str() == Some("select 1"))
        );
    }
    let pinned = &nodes[1]["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"];
    assert_eq!(pinned.as_str(), Some("machine-a"));
    assert!(nodes[3]["spec"]["template"]["spec"]["nodeSelector"].is_null());
}

#[test]
fn the_controller_runs_prodhome_with_the_lab_file_and_every_secret() {
    let bundle = shop(Target::K8s { cnpg: false });
    let objects = docs(&bundle, "controller.yaml");
    let deployment = objects
        .iter()
        .find(|o| {
            o["kind"].as_str() == Some("Deployment")
                && o["metadata"]["name"].as_str() == Some("shop-lab-controller")
        })
        .expect("the controller's Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command.first(), Some(&"prodhome"));
    assert_eq!(command.last(), Some(&"controller"));
    assert!(
        command.windows(2).any(|w| w == ["-f", "/etc/prodhome/lab.toml"]),
        "{command:?}"
    );
    let hosts = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("PRODHOME_NODE_HOSTS"))
        .unwrap();
    assert_eq!(
        hosts["value"].as_str(),
        Some("orders_db=orders-db,stock_db=stock-db,replica_a=replica-a,replica_b=replica-b")
    );
    let config = docs(&bundle, "config.yaml");
    assert!(
        config[0]["data"]["lab-toml"]
            .as_str()
            .unwrap()
            .contains("[replication.stock]")
    );
    let secrets = docs(&bundle, "secrets.yaml");
    assert_eq!(
        secrets[0]["stringData"]["replica_b-replication"].as_str(),
        Some("repl-replica_b-Zk9")
    );
    assert!(objects.iter().any(|o| o["kind"].as_str() == Some("Service")));
    let advertised = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("PRODHOME_CONTROLLER_HOST"))
        .unwrap();
    assert_eq!(advertised["value"].as_str(), Some("shop-lab-controller"));
}

/// The controller's Service carries the dashboard and one port per
/// replication path (three here: two publishers, one of them to two
/// subscribers), where subscriptions reach its links; under CNPG the
/// subscriptions connect directly and only the dashboard's is there.
#[test]
fn the_controllers_service_carries_each_replication_links_port() {
    let ports = |cnpg: bool| -> Vec<i64> {
        let bundle = shop(Target::K8s { cnpg });
        let objects = docs(&bundle, "controller.yaml");
        let service = objects
            .iter()
            .find(|o| {
                o["kind"].as_str() == Some("Service")
                    && o["metadata"]["name"].as_str() == Some("shop-lab-controller")
            })
            .expect("the controller's Service");
        service["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ports(false), [7800, 7801, 7802, 7803]);
    assert_eq!(ports(true), [7800]);
}
