//! Services in containers, against the real engine: the dispatcher (a real
//! program of this workspace) packed by `container = true` into an image of
//! its own, run on a docker lab's network, where it reaches the publisher
//! by container name; the rows it writes reach the subscriber; a kill of
//! its container (through the engine) gets it restarted with events; its
//! log, status and `down` are a container's. And the bad inputs: an image
//! the engine does not have, a container that exits at once, `image` on a
//! native lab — each refused with nothing of the lab left behind.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, poll};

use crate::containers::{containers_of, engine_answers};
use crate::dispatch::build_dir;
use crate::{BIN, text};

/// The dispatcher's table, as `dispatcher::SCHEMA` creates it: the lab
/// replicates it, so subscribers must have it too.
const SCHEMA: &str = "create table pickups (id bigserial primary key, rider text not null, \
    requested_at timestamptz not null default now(), dispatched_at timestamptz, dispatched_by text);\n";

fn lab_file(name: &str, service: &str) -> String {
    format!(
        "name = \"{name}\"\nbackend = \"docker\"\n[postgres.publisher]\n[postgres.subscriber]\n\
         [replication.rides]\npublisher = \"publisher\"\nsubscribers = [\"subscriber\"]\n\
         schema = \"schema.sql\"\ntables = [\"pickups\"]\n{service}"
    )
}

fn service(lab: &TestLab, name: &str) -> Option<Value> {
    lab.try_status()?["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

fn dispatched_on_subscriber(lab: &TestLab) -> i64 {
    lab.sql(
        "subscriber",
        "SELECT count(*) FROM pickups WHERE dispatched_at IS NOT NULL AND dispatched_by IS NOT NULL",
    )
    .parse()
    .unwrap()
}

fn request_pickups(lab: &TestLab, from: i64, to: i64) {
    lab.sql(
        "publisher",
        &format!("INSERT INTO pickups (rider) SELECT 'rider' || g FROM generate_series({from}, {to}) g"),
    );
}

/// The dispatcher packed and run in a container: it dispatches through the
/// lab network, survives a kill of its container, and `down` removes it.
#[test]
fn a_packed_service_writes_through_the_lab_network_and_is_restarted_after_a_kill() {
    let Some(_engine) = engine_answers() else { return };
    let dispatcher = build_dir().join("dispatcher");
    let name = format!("svc_{}", std::process::id());
    let lab = TestLab::new(BIN)
        .lab(&lab_file(
            &name,
            &format!(
                "[service.dispatcher]\ncommand = [{:?}]\ncontainer = true\n\
                 env = {{ DATABASE_URL = \"${{postgres.publisher.url}}\", PORT = \"8080\", INTERVAL_MS = \"50\" }}\n\
                 depends_on = {{ publisher = \"ready\" }}\n",
                dispatcher.display().to_string()
            ),
        ))
        .file("schema.sql", SCHEMA);
    lab.up();
    let container = format!("prodhome-{name}-dispatcher");
    assert!(
        containers_of(&name).contains(&container),
        "{:?}",
        containers_of(&name)
    );
    let status = service(&lab, "dispatcher").unwrap();
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["container"], container.as_str(), "{status}");
    let table = text(&lab.run(&["status"]));
    assert!(table.contains(&format!("container {container}")), "{table}");

    request_pickups(&lab, 1, 20);
    poll(
        "20 pickups dispatched, on the subscriber",
        Duration::from_secs(60),
        || (dispatched_on_subscriber(&lab) == 20).then_some(()),
    );
    // Its log is the container's: it reached the publisher by container name.
    let log = text(&lab.run(&["logs", "dispatcher"]));
    assert!(
        log.contains(&format!("connected to prodhome-{name}-publisher:")),
        "{log}"
    );

    let out = lab.run(&["chaos", "kill", "dispatcher"]);
    assert!(out.status.success(), "{}", text(&out));
    poll(
        "the dispatcher restarted and ready",
        Duration::from_secs(60),
        || {
            let s = service(&lab, "dispatcher")?;
            (s["state"] == "ready" && s["restarts"] == 1).then_some(())
        },
    );
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert!(
        events.contains(r#""unit":"dispatcher","kind":"exited","exit":{"code":null,"signal":9}"#),
        "the shim ends as its container was killed: {events}"
    );
    assert!(
        events.contains(r#""unit":"dispatcher","kind":"restarting""#),
        "{events}"
    );
    request_pickups(&lab, 21, 30);
    poll(
        "30 pickups dispatched after the restart",
        Duration::from_secs(60),
        || (dispatched_on_subscriber(&lab) == 30).then_some(()),
    );

    let out = lab.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        containers_of(&name).is_empty(),
        "down left {:?}",
        containers_of(&name)
    );
}

/// An image the engine does not have: `up` says which and what to do, and
/// creates nothing (no container, no network).
#[test]
fn an_image_the_engine_lacks_is_refused_before_anything_is_created() {
    let Some(_engine) = engine_answers() else { return };
    let name = format!("svcmiss_{}", std::process::id());
    let lab = TestLab::new(BIN)
        .lab(&lab_file(
            &name,
            "[service.app]\nimage = \"prodhome-test/absent:0.0\"\n",
        ))
        .file("schema.sql", SCHEMA);
    let out = lab.run(&["up", "-d", "--timeout", "60s"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("prodhome.toml:11:9"), "located at `image`: {said}");
    assert!(
        said.contains("\"prodhome-test/absent:0.0\" is not in the Docker Engine"),
        "{said}"
    );
    assert!(said.contains("docker load"), "says what to do: {said}");
    assert!(containers_of(&name).is_empty(), "left {:?}", containers_of(&name));
}

/// A packed program that exits at once: `up` fails with its exit code and
/// the last lines it printed, and `down` leaves nothing.
#[test]
fn a_container_that_exits_at_once_fails_up_with_its_log_and_code() {
    let Some(_engine) = engine_answers() else { return };
    let name = format!("svcexit_{}", std::process::id());
    let lab = TestLab::new(BIN)
        .lab(&lab_file(
            &name,
            // busybox's sh, packed: prints and exits 3 before it is ready.
            &format!(
                "[service.oops]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"echo no config here; exit 3\"]\n\
                 container = true\nready = {{ tcp = {}, interval = \"100ms\" }}\n",
                testkit::free_port()
            ),
        ))
        .file("schema.sql", SCHEMA);
    let out = lab.run(&["up", "-d", "--timeout", "60s"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("service oops did not become ready: it failed on its first start, its container ended with exit code 3"),
        "{said}"
    );
    assert!(said.contains("no config here"), "its log: {said}");
    let _ = lab.run(&["down"]);
    assert!(containers_of(&name).is_empty(), "left {:?}", containers_of(&name));
}

/// `image` on a native lab makes no sense: `check` and `up` say so, at the key.
#[test]
fn an_image_on_a_native_lab_is_a_located_error() {
    let lab =
        TestLab::new(BIN).lab("name = \"plainsvc\"\n[postgres.db]\n[service.app]\nimage = \"myapp:1.2\"\n");
    for args in [&["check"][..], &["up", "-d", "--timeout", "30s"]] {
        let out = lab.run(args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(
                "prodhome.toml:4:9: service.app.image: a service runs in a container only in a docker lab"
            ),
            "{args:?}: {said}"
        );
    }
    assert!(!lab.state().join("nodes").exists(), "up created nothing");
}
