//! The Plan → options mapping, from a small lab file read by `lab`'s own
//! parser.

use std::path::Path;

use super::*;
use crate::links::Links;
use model::Secret;

const LAB: &str = r#"name = "shop"
seed = 7
[postgres.pub]
[postgres.sub1]
[postgres.sub2]
[replication.books]
publisher = "pub"
subscribers = ["sub1", "sub2"]
[service.app]
command = ["./bin/app", "--port", "8080"]
env = { DATABASE_URL = "${postgres.pub.url}", PORT = "${postgres.sub1.port}" }
[sample]
interval = "2s"
sinks = ["embedded"]
"#;

fn plan(dir: &Path) -> Plan {
    lab::parse(LAB, &dir.join("lab.toml"), dir).expect("the test lab parses")
}

/// Ports as `ports.json` would hold them: nodes 5000.., links 6000...
fn ports(plan: &Plan) -> BTreeMap<String, u16> {
    let nodes = plan.nodes.iter().map(|n| n.name.clone());
    let mut ports: BTreeMap<String, u16> = nodes.zip(5000..).collect();
    ports.extend(link_names(plan).into_iter().zip(6000..));
    ports
}

fn credentials(plan: &Plan) -> BTreeMap<String, Credentials> {
    plan.nodes
        .iter()
        .map(|n| {
            let c = Credentials {
                superuser: Secret::new(format!("su-{}", n.name)),
                replication: Secret::new(format!("repl-{}", n.name)),
            };
            (n.name.clone(), c)
        })
        .collect()
}

#[test]
fn nodes_get_their_kept_ports_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    let state = StateDir::new(dir.path().join("state"));
    let specs = node_specs(&plan, &state, &ports(&plan), &credentials(&plan)).unwrap();
    let names: Vec<(&str, u16)> = specs.iter().map(|s| (s.name.as_str(), s.port)).collect();
    assert_eq!(names, [("pub", 5000), ("sub1", 5001), ("sub2", 5002)]);
    assert_eq!(specs[1].data_dir, state.data_dir("sub1"));
    assert_eq!(specs[1].credentials.superuser.expose(), "su-sub1");
    let missing = node_specs(&plan, &state, &BTreeMap::new(), &credentials(&plan)).unwrap_err();
    assert!(
        missing.to_string().contains("run `prodhome up` first"),
        "{missing}"
    );
}

#[test]
fn every_path_a_fault_may_cut_is_a_link_to_the_right_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    assert_eq!(
        link_names(&plan),
        [
            "clients->pub",
            "clients->sub1",
            "clients->sub2",
            "pub->sub1",
            "pub->sub2"
        ]
    );
    let opts = link_options(&plan, &ports(&plan)).unwrap();
    let seen: Vec<(&str, u16, u16, u64)> = opts
        .iter()
        .map(|o| (o.name.as_str(), o.listen.port(), o.upstream.port(), o.seed))
        .collect();
    assert_eq!(
        seen,
        [
            ("clients->pub", 6000, 5000, 7),
            ("clients->sub1", 6001, 5001, 7),
            ("clients->sub2", 6002, 5002, 7),
            ("pub->sub1", 6003, 5000, 7),
            ("pub->sub2", 6004, 5000, 7),
        ]
    );
    assert!(
        opts.iter()
            .all(|o| o.listen.ip().is_loopback() && o.upstream.ip().is_loopback())
    );
    let infos = replications(&plan);
    assert_eq!(infos.len(), 1);
    assert_eq!(
        (infos[0].name.as_str(), infos[0].publisher.as_str()),
        ("books", "pub")
    );
    assert_eq!(infos[0].subscribers, ["sub1", "sub2"]);
}

#[test]
fn a_service_reaches_nodes_through_their_client_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    let state = StateDir::new(dir.path().join("state"));
    let specs = node_specs(&plan, &state, &ports(&plan), &credentials(&plan)).unwrap();
    // No links running: the node's own port stands in for its proxy.
    let refs = Refs {
        nodes: &specs,
        links: &Links::default(),
        secrets: &BTreeMap::new(),
        lab_network: None,
    };
    let unit = service_unit(&plan.services[0], &state, &refs).unwrap();
    assert_eq!(unit.program, dir.path().join("bin/app"));
    assert_eq!(unit.args, ["--port", "8080"]);
    let env: BTreeMap<&str, &str> = unit.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        env["DATABASE_URL"],
        "postgresql://postgres:su-pub@127.0.0.1:5000/postgres"
    );
    assert_eq!(env["PORT"], "5001");
    assert_eq!(unit.log, state.node_log("app"));
    assert!(refs.resolve("${nope.x}").is_err());
}

#[test]
fn the_sampler_and_the_store_follow_sample() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    let state = StateDir::new(dir.path().join("state"));
    let specs = node_specs(&plan, &state, &ports(&plan), &credentials(&plan)).unwrap();
    let nodes: Vec<SampledNode<'_>> = specs
        .iter()
        .map(|spec| SampledNode {
            spec,
            pid: (spec.name == "pub").then_some(42),
        })
        .collect();
    let opts = sampler_options(&plan, &nodes);
    assert_eq!(opts.interval, Duration::from_secs(2));
    assert_eq!(opts.statement_timeout, Duration::from_secs(1));
    let targets: Vec<(&str, &str, u16, Option<u32>)> = opts
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.host.as_str(), n.port, n.postmaster_pid))
        .collect();
    assert_eq!(
        targets,
        [
            ("pub", "127.0.0.1", 5000, Some(42)),
            ("sub1", "127.0.0.1", 5001, None),
            ("sub2", "127.0.0.1", 5002, None),
        ]
    );
    assert_eq!(opts.replications[0].subscribers, ["sub1", "sub2"]);
    let store = store_options(&plan, &state).unwrap();
    assert_eq!(store.embedded.map(|e| e.path), Some(state.metrics_db()));
    assert!(store.influx.is_none() && !store.prometheus);
}

#[test]
fn a_docker_labs_replication_links_go_to_its_link_proxy_by_container_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan(dir.path());
    assert!(
        link_proxy(&plan, &ports(&plan)).unwrap().is_none(),
        "native: no link proxy"
    );
    plan.backend = lab::Backend::Docker;
    let names = kept_port_names(&plan);
    assert_eq!(names.last().map(String::as_str), Some("link-proxy"));
    let ports: BTreeMap<String, u16> = plan
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .zip(5000..)
        .chain(names.into_iter().zip(6000..))
        .collect();
    let local: Vec<String> = link_options(&plan, &ports)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(local, ["clients->pub", "clients->sub1", "clients->sub2"]);
    let proxy = link_proxy(&plan, &ports)
        .unwrap()
        .expect("a docker lab with replication");
    assert_eq!(proxy.control_port, 6005);
    let links: Vec<String> = proxy.links.iter().map(|l| l.to_arg()).collect();
    assert_eq!(
        links,
        [
            "pub->sub1@6003=prodhome-shop-pub:5000",
            "pub->sub2@6004=prodhome-shop-pub:5000"
        ]
    );
}

#[test]
fn a_service_in_a_container_reaches_nodes_on_the_lab_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan(dir.path());
    let state = StateDir::new(dir.path().join("state"));
    let specs = node_specs(&plan, &state, &ports(&plan), &credentials(&plan)).unwrap();
    let refs = Refs {
        nodes: &specs,
        links: &Links::default(),
        secrets: &BTreeMap::new(),
        lab_network: None,
    };
    let service = &mut plan.services[0];
    service.run = lab::ServiceRun::Packed {
        at: service.command_at.clone(),
    };
    service.ready = Some(lab::ProbePlan {
        check: lab::ProbeCheckPlan::Http("http://127.0.0.1:8080/health".into()),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        threshold: 3,
    });
    let run = ContainerRun {
        lab: "shop",
        image: "prodhome/service:app-abc",
        shim: Path::new("/usr/bin/prodhome"),
    };
    let (unit, container) = container_unit(service, &state, &refs, &run).unwrap();
    assert_eq!(unit.program, Path::new("/usr/bin/prodhome"));
    assert_eq!(unit.args, ["__service-container", "prodhome-shop-app"]);
    assert_eq!(unit.stop_timeout, service.stop_timeout + SHIM_STOP_MARGIN);
    assert!(unit.ready.is_some(), "the supervisor probes it as natively");
    let env: BTreeMap<&str, &str> = container
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env["DATABASE_URL"], "postgresql://postgres:su-pub@prodhome-shop-pub:5000/postgres",
        "the container name and the port the server listens on in its container"
    );
    assert_eq!(env["PORT"], "5001");
    assert_eq!(
        container.cmd.as_deref(),
        Some(&["--port".to_string(), "8080".into()][..])
    );
    assert_eq!(container.ports, [8080], "the probed port is published");
    let handed: engine::ServiceContainer =
        serde_json::from_str(&unit.env[0].1).expect("the shim's spec is the container's");
    assert_eq!(handed, container);
}
