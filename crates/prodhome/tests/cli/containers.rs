//! `backend = "docker"` as far as it goes: `image build` against the real
//! engine (built, then cached), `doctor`'s engine check, and `up` refusing a
//! Docker lab (the daemon has no Docker node backend yet) before it creates
//! any state.

use serde_json::Value;
use testkit::TestLab;

use crate::{BIN, text};

const DOCKER_LAB: &str = "name = \"boxed\"\nbackend = \"docker\"\n\n[postgres.publisher]\n";

fn engine_answers() -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(engine::Engine::connect()) {
        Ok(_) => true,
        Err(e) => {
            testkit::skip(&format!("no usable Docker Engine: {e}"));
            false
        }
    }
}

#[test]
fn image_build_builds_the_labs_postgres_image_then_finds_it_cached() {
    if !engine_answers() {
        return;
    }
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
    if !engine_answers() {
        return;
    }
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

#[test]
fn up_refuses_a_docker_lab_with_where_it_was_asked_and_creates_nothing() {
    let lab = TestLab::new(BIN).lab(DOCKER_LAB);
    let out = lab.run(&["up", "-d", "--timeout", "30s"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("prodhome.toml:2:11"), "{said}");
    assert!(
        said.contains("cannot run the lab's nodes in containers yet"),
        "{said}"
    );
    assert!(said.contains("--backend native"), "{said}");
    assert!(!lab.state().exists(), "up left a state directory behind");

    let native = TestLab::new(BIN).lab("name = \"plain\"\n[postgres.publisher]\n");
    let out = native.run(&["up", "--backend", "docker"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("(--backend docker)"), "{}", text(&out));
    assert!(!native.state().exists());

    let out = native.run(&["up", "--backend", "podman"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("expected one of native, docker"),
        "{}",
        text(&out)
    );
}
