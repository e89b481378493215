//! `export stack`: Swarm's objects, placement, restart policies, dnsrr and
//! host-mode ports, and `docker stack config`'s reading of the file.

use std::process::Command;

use export::Target;
use serde_yaml::Value;

use crate::{NODES, assert_no_password, docs, shop, tool, written};

#[test]
fn every_service_avoids_ipvs_and_says_why() {
    let bundle = shop(Target::Stack);
    let text = &bundle.file("stack.yaml").unwrap().text;
    assert!(text.contains("IPVS") && text.contains("dnsrr") && text.contains("mode: host"));
    assert_no_password(&bundle, "stack.yaml");
    let file = &docs(&bundle, "stack.yaml")[0];
    assert_eq!(file["version"].as_str(), Some("3.8"));
    assert_eq!(file["networks"]["lab"]["driver"].as_str(), Some("overlay"));
    for (name, service) in file["services"].as_mapping().unwrap() {
        assert_eq!(
            service["deploy"]["endpoint_mode"].as_str(),
            Some("dnsrr"),
            "{name:?}"
        );
        assert!(
            service["deploy"]["restart_policy"]["condition"].is_string(),
            "{name:?}"
        );
        for port in service["ports"].as_sequence().into_iter().flatten() {
            assert_eq!(port["mode"].as_str(), Some("host"), "{name:?}");
        }
    }
    let services = &file["services"];
    assert_eq!(
        services["web"]["deploy"]["restart_policy"]["condition"].as_str(),
        Some("none")
    );
    assert_eq!(
        services["worker"]["deploy"]["restart_policy"]["condition"].as_str(),
        Some("on-failure")
    );
    assert_eq!(
        services["orders_db"]["ports"][0]["published"].as_u64(),
        Some(25432)
    );
}

#[test]
fn a_node_the_lab_pins_to_a_host_is_placed_there_and_only_that_one() {
    let bundle = shop(Target::Stack);
    let file = &docs(&bundle, "stack.yaml")[0];
    let constraints = &file["services"]["orders_db"]["deploy"]["placement"]["constraints"];
    assert_eq!(constraints[0].as_str(), Some("node.hostname == machine-a"));
    for node in &NODES[1..] {
        assert!(file["services"][*node]["deploy"]["placement"].is_null(), "{node}");
    }
}

#[test]
fn secrets_and_configs_are_swarm_objects_from_the_exports_files() {
    let bundle = shop(Target::Stack);
    let file = &docs(&bundle, "stack.yaml")[0];
    for node in NODES {
        let name = format!("{node}-superuser");
        assert_eq!(
            file["secrets"][name.as_str()]["file"].as_str(),
            Some(format!("./secrets/{name}").as_str())
        );
        let conf = format!("{node}-postgresql-conf");
        assert!(file["configs"][conf.as_str()]["file"].is_string(), "{conf}");
        let mounted = &file["services"][*node]["secrets"][0];
        assert_eq!(mounted["source"].as_str(), Some(name.as_str()));
        assert_eq!(mounted["mode"].as_u64(), Some(0o400));
    }
    let configs: Vec<&str> = file["services"]["controller"]["configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        configs,
        [
            "/etc/prodhome/lab.toml",
            "/etc/prodhome/db/orders.sql",
            "/etc/prodhome/db/stock.sql"
        ]
    );
}

/// The docker CLI's own reading of a stack file (no Swarm needed).
#[test]
fn docker_stack_config_accepts_the_file() {
    let Some(docker) = tool("docker") else {
        return testkit::skip("the docker CLI is not installed (apt-get install docker.io)");
    };
    let dir = written(&shop(Target::Stack));
    let out = Command::new(docker)
        .args(["stack", "config", "-c", "stack.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "docker stack config refused it: {stderr}");
    let config: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(config["services"].as_mapping().unwrap().len(), NODES.len() + 3);
    assert!(!stderr.to_lowercase().contains("ignor"), "{stderr}");
}
