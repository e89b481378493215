//! `backend = "docker"` against the real engine: `image build` (built, then
//! cached), `doctor`'s engine check, and a lab up in containers, replicated,
//! verified, its containers named by `status` and their stats sampled into
//! the store, a node killed and restarted, and a clean `down`.

use serde_json::Value;
use testkit::TestLab;

use crate::{BIN, text};

const DOCKER_LAB: &str = "name = \"boxed\"\nbackend = \"docker\"\n\n[postgres.publisher]\n";

/// A test's hold on the Docker Engine, released when dropped: shared by
/// every test that only runs containers, exclusive for one that changes
/// the engine for everyone (leaving a Swarm drops the port mappings of
/// every running container on Docker 20.10: `deploy.rs`). A file lock, so
/// it holds across test processes too.
pub(crate) struct EngineHold {
    _lock: std::fs::File,
}

/// The engine, held shared; `None` (after saying why) when none answers.
pub(crate) fn engine_answers() -> Option<EngineHold> {
    hold_engine(false)
}

/// The engine, held alone: no other engine test runs meanwhile.
pub(crate) fn engine_alone() -> Option<EngineHold> {
    hold_engine(true)
}

fn hold_engine(alone: bool) -> Option<EngineHold> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Err(e) = rt.block_on(engine::Engine::connect()) {
        testkit::skip(&format!("no usable Docker Engine: {e}"));
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/prodhome-tests-engine.lock")
        .expect("the engine tests' lock file");
    let locked = if alone { file.lock() } else { file.lock_shared() };
    locked.expect("locking the engine tests' lock file");
    Some(EngineHold { _lock: file })
}

#[test]
fn image_build_builds_the_labs_postgres_image_then_finds_it_cached() {
    let Some(_engine) = engine_answers() else { return };
    let lab = TestLab::new(BIN).lab(DOCKER_LAB);
    // The first run may find an image another test built: either way the
    // second run must find this one, unchanged, without packing.
    let first = lab.run(&["image", "build", "--json"]);
    assert!(first.status.success(), "{}", text(&first));
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    let second = lab.run(&["image", "build", "--json"]);
    assert!(second.status.success(), "{}", text(&second));
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(
        first["image"]
            .as_str()
            .unwrap()
            .starts_with("prodhome/postgres:15-"),
        "{first}"
    );
    assert_eq!(second["image"], first["image"]);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["packed_bytes"], 0);
}

#[test]
fn doctor_checks_the_engine_a_docker_lab_needs() {
    let Some(_engine) = engine_answers() else { return };
    let lab = TestLab::new(BIN).lab(DOCKER_LAB);
    let out = lab.run(&["doctor", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let checks = doc["checks"].as_array().unwrap();
    let engine = checks
        .iter()
        .find(|c| c["what"].as_str().unwrap().starts_with("docker engine"))
        .unwrap_or_else(|| panic!("no engine check in {doc}"));
    assert_eq!(engine["status"], "ok", "{engine}");
    assert!(engine["what"].as_str().unwrap().contains("(API 1."), "{engine}");
}

/// Two nodes on the docker backend: up, replicated, verified; a SIGKILL of
/// the publisher is restarted by the backend with nothing acknowledged lost;
/// `down` leaves no container or network of the lab.
#[test]
fn a_lab_runs_replicated_in_containers_survives_a_kill_and_downs_clean() {
    let Some(_engine) = engine_answers() else { return };
    let name = format!("dock_{}", std::process::id());
    let lab = TestLab::new(BIN)
        .lab(&format!(
            "name = \"{name}\"\nbackend = \"docker\"\n[postgres.publisher]\n[postgres.subscriber]\n\
             [replication.books]\npublisher = \"publisher\"\nsubscribers = [\"subscriber\"]\n\
             schema = \"schema.sql\"\ntables = [\"books\"]\n"
        ))
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    let objects = containers_of(&name);
    for object in ["publisher", "subscriber"]
        .map(|n| format!("prodhome-{name}-{n}"))
        .into_iter()
        .chain([format!("prodhome-{name}")])
    {
        assert!(objects.contains(&object), "{object} not in {objects:?}");
    }
    names_its_containers(&lab, &name);
    a_second_lab_of_the_name_is_refused(&lab, &name);
    container_stats_reach_the_store(&lab, &["publisher", "subscriber"]);
    let before: i64 = lab
        .sql("publisher", "SELECT count(*) FROM books")
        .parse()
        .unwrap();
    lab.sql(
        "publisher",
        "INSERT INTO books (id, title) SELECT g, 'b' || g FROM generate_series(1000001, 1000050) g",
    );
    verify_ok(&lab);

    let out = lab.run(&["chaos", "kill", "publisher"]);
    assert!(out.status.success(), "{}", text(&out));
    testkit::poll(
        "the publisher restarted and ready",
        std::time::Duration::from_secs(120),
        || {
            let node = lab.try_status()?["nodes"]
                .as_array()?
                .iter()
                .find(|n| n["name"] == "publisher")?
                .clone();
            (node["state"] == "ready" && node["restarts"] == 1).then_some(())
        },
    );
    let after: i64 = lab
        .sql("publisher", "SELECT count(*) FROM books")
        .parse()
        .unwrap();
    assert_eq!(after, before + 50, "rows committed before the kill are kept");
    verify_ok(&lab);

    logs_come_from_the_engine_without_host_files(&lab);

    let out = lab.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(containers_of(&name).is_empty(), "down left containers");
}

/// `status` names each node's container, in its JSON and its table.
fn names_its_containers(lab: &TestLab, name: &str) {
    for node in ["publisher", "subscriber"] {
        let container = format!("prodhome-{name}-{node}");
        assert_eq!(lab.node(node)["container"], container.as_str(), "{node}");
        let out = lab.run(&["status"]);
        assert!(
            text(&out).contains(&format!("container {container}")),
            "{}",
            text(&out)
        );
    }
}

/// Every node's `container` points (the engine's stats) are in the
/// embedded store, read back through the dashboard's series route: memory
/// in use is never 0 for a running server, and every field is there.
fn container_stats_reach_the_store(lab: &TestLab, nodes: &[&str]) {
    let api = lab.status()["api"].as_str().unwrap().to_string();
    let url = format!("{api}/api/series?measurement=container&since=5m");
    let sampled = |series: &[Value], node: &str, field: &str| {
        series
            .iter()
            .filter(|s| s["tags"]["node"] == node && s["field"] == field)
            .flat_map(|s| s["points"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p[1].as_f64())
            .collect::<Vec<f64>>()
    };
    testkit::poll(
        "container stats in the store",
        std::time::Duration::from_secs(90),
        || {
            let (_, body) = testkit::http_get(&url)?;
            let series: Vec<Value> = serde_json::from_str(&body).ok()?;
            nodes
                .iter()
                .all(|node| {
                    let used = sampled(&series, node, "mem_bytes");
                    let fields_present = [
                        "cpu_percent",
                        "mem_limit_bytes",
                        "net_rx_bytes",
                        "blk_write_bytes",
                    ]
                    .iter()
                    .all(|f| !sampled(&series, node, f).is_empty());
                    used.len() >= 2 && used.iter().all(|m| *m > 0.0) && fields_present
                })
                .then_some(())
        },
    );
}

/// With the subscriber's log files gone from the host, `logs subscriber`
/// reads its container's log through the engine: what the postmaster
/// printed before its log collector took over.
fn logs_come_from_the_engine_without_host_files(lab: &TestLab) {
    let state = daemon::StateDir::new(lab.state());
    let _ = std::fs::remove_file(state.node_log("subscriber"));
    std::fs::remove_dir_all(pg::server_log_dir(&state.data_dir("subscriber"))).unwrap();
    let out = lab.run(&["logs", "subscriber"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("redirecting log output to logging collector"),
        "{}",
        text(&out)
    );
}

pub(crate) fn verify_ok(lab: &TestLab) {
    testkit::poll("verify's verdict ok", std::time::Duration::from_secs(120), || {
        let out = lab.run(&["verify"]);
        (out.status.success() && text(&out).contains("verdict: ok")).then_some(())
    });
}

/// The lab's containers and networks.
/// Another directory's lab of the same name would take these containers
/// over (they are named after the lab): its `up` is refused at once,
/// naming where the running one is, and this lab's nodes run on.
fn a_second_lab_of_the_name_is_refused(lab: &TestLab, name: &str) {
    let lab_file = std::fs::read_to_string(lab.dir().join("prodhome.toml")).unwrap();
    let twin = TestLab::new(BIN)
        .lab(&lab_file)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    let out = twin.run(&["up", "-d", "--timeout", "60s"]);
    assert!(
        !out.status.success(),
        "a second lab {name} came up: {}",
        text(&out)
    );
    let said = text(&out);
    assert!(
        said.contains("already runs on this Docker Engine, from"),
        "{said}"
    );
    assert!(said.contains(&lab.state().display().to_string()), "{said}");
    // Its `down` (as its TestLab's drop runs) leaves this lab's containers.
    let down = twin.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("left alone"), "{}", text(&down));
    for node in ["publisher", "subscriber"] {
        assert_eq!(lab.node(node)["state"], "ready", "{node} after the refused twin");
    }
    let containers = containers_of(name);
    assert!(
        containers.contains(&format!("prodhome-{name}-publisher")),
        "{containers:?}"
    );
}

pub(crate) fn containers_of(lab: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = engine::Engine::connect().await.unwrap();
        let mut names = engine.containers(lab).await.unwrap();
        names.extend(engine.networks(lab).await.unwrap());
        names
    })
}

#[test]
fn up_refuses_a_bad_backend_flag() {
    let native = TestLab::new(BIN).lab("name = \"plain\"\n[postgres.publisher]\n");
    let out = native.run(&["up", "--backend", "podman"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("expected one of native, docker"),
        "{}",
        text(&out)
    );
    assert!(!native.state().exists());
}
