//! `export compose`: what the file promises, and docker-compose 1.29's
//! own reading of it.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use export::Target;
use serde_yaml::Value;

use crate::{NODES, assert_no_password, docs, read, shop, tool, written};

#[test]
fn nodes_are_healthy_by_a_real_query_and_the_rest_waits_for_it() {
    let bundle = shop(Target::Compose);
    let file = &docs(&bundle, "compose.yaml")[0];
    let services = &file["services"];
    for node in NODES {
        let test = &services[*node]["healthcheck"]["test"];
        let argv: Vec<&str> = test
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(argv[0], "CMD");
        assert!(argv.contains(&"psql") && argv.contains(&"select 1"), "{argv:?}");
        assert_eq!(
            services["controller"]["depends_on"][*node]["condition"].as_str(),
            Some("service_healthy"),
            "the controller must wait for {node}"
        );
        assert_eq!(services[*node]["networks"][0].as_str(), Some("lab"));
    }
    // A service waits for what it depends on as the lab says: healthy
    // when the target has a healthcheck, started otherwise.
    assert_eq!(
        services["worker"]["depends_on"]["orders_db"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        services["web"]["depends_on"]["worker"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        services["web"]["depends_on"]["stock_db"]["condition"].as_str(),
        Some("service_started")
    );
    assert_eq!(file["networks"].as_mapping().unwrap().len(), 1, "one network");
}

#[test]
fn no_password_in_the_yaml_ports_on_loopback_and_tags_pinned() {
    let bundle = shop(Target::Compose);
    assert_no_password(&bundle, "compose.yaml");
    let file = &docs(&bundle, "compose.yaml")[0];
    let services = file["services"].as_mapping().unwrap();
    for (name, service) in services {
        let image = service["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name:?}: unpinned image {image}"
        );
        for port in service["ports"].as_sequence().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{name:?}: {port:?}"
            );
        }
    }
    assert_eq!(
        file["services"]["orders_db"]["ports"][0].as_str(),
        Some("127.0.0.1:25432:5432"),
        "a fixed port is kept"
    );
    assert_eq!(
        file["services"]["replica_a"]["ports"][0].as_str(),
        Some("127.0.0.1:25433:5432"),
        "a kept port is kept"
    );
    // Every password is a 0600 file, referenced by path.
    let secrets = file["secrets"].as_mapping().unwrap();
    assert_eq!(
        secrets.len(),
        2 * NODES.len() + 1,
        "two per node and the named one"
    );
    for (name, secret) in secrets {
        let name = name.as_str().unwrap();
        assert_eq!(
            secret["file"].as_str(),
            Some(format!("./secrets/{name}").as_str())
        );
        let file = bundle.file(&format!("secrets/{name}")).unwrap();
        assert_eq!(file.mode, 0o600);
    }
    assert_eq!(
        bundle.file("secrets/orders_db-superuser").unwrap().text,
        "su-orders_db-Xq7"
    );
    // The service's environment, passwords resolved for the lab network,
    // is an env file among the secrets, not YAML.
    let env = &bundle.file("secrets/worker-env").unwrap().text;
    assert!(
        env.contains("DATABASE_URL=postgresql://postgres:su-orders_db-Xq7@orders_db:5432/postgres\n"),
        "{env}"
    );
    assert!(env.contains("KEY=apikey-Vb3-never-in-yaml\n"), "{env}");
}

#[test]
fn the_shell_commands_escape_dollars_from_compose_interpolation() {
    let bundle = shop(Target::Compose);
    let text = &bundle.file("compose.yaml").unwrap().text;
    assert!(text.contains("$$PGDATA") && !text.contains(" $PGDATA"), "{text}");
}

/// docker-compose (Debian's 1.29, what .ci/run installs) reads the file
/// as the lab: every service, the secrets by file, the dollars unescaped.
#[test]
fn docker_compose_accepts_the_file() {
    let Some(compose) = tool("docker-compose") else {
        return testkit::skip("docker-compose is not installed (apt-get install docker-compose)");
    };
    let bundle = shop(Target::Compose);
    let dir = written(&bundle);
    let mode = std::fs::metadata(dir.path().join("secrets/stock_db-superuser"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = Command::new(compose)
        .args(["-f", "compose.yaml", "config"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "docker-compose config refused it: {stderr}");
    let config: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let services = config["services"].as_mapping().unwrap();
    assert_eq!(services.len(), NODES.len() + 3, "nodes, controller, worker, web");
    // 1.29 prints `$$` as written; the point is that nothing was
    // interpolated away from the deploying shell.
    let command = config["services"]["orders_db"]["command"][2].as_str().unwrap();
    assert!(command.contains("$PGDATA/PG_VERSION\""), "{command}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    assert!(read(dir.path(), "config/files/lab-toml").contains("[postgres.orders_db]"));
}
