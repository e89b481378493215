//! Link faults in a docker lab, against the real engine: a publisher and
//! two subscribers (not the seed's names or table) in containers, every
//! replication link through the lab's link proxy container (brought back
//! by the engine when killed); latency on one
//! link delays that subscriber only, a partition cuts it until healed (and
//! is put back on the proxy when it is killed and restarted), a
//! killed and a paused node come back, hum and the test's own writes run
//! throughout, a node cut off the lab network (the engine's partition)
//! rejoins and catches up, `verify --ledger` finds nothing acknowledged lost, and
//! `down` leaves no container or network of the lab.

use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{TestLab, assert_success, poll};

use crate::containers::{containers_of, engine_answers, verify_ok};
use crate::{BIN, text};

const SCHEMA: &str = "CREATE TABLE entries (id bigint PRIMARY KEY, note text NOT NULL);\n";
const LIMIT: Duration = Duration::from_secs(120);

fn lab_file(name: &str) -> String {
    format!(
        "name = \"{name}\"\nbackend = \"docker\"\nseed = 7\n\
         [postgres.origin]\n[postgres.replica_a]\n[postgres.replica_b]\n\
         [replication.ledger]\npublisher = \"origin\"\nsubscribers = [\"replica_a\", \"replica_b\"]\n\
         schema = \"ledger.sql\"\ntables = \"all\"\n\
         [hum]\nnode = \"origin\"\nworkload = \"books\"\nclients = 2\nrate = 20\n"
    )
}

fn link<'a>(status: &'a Value, subscriber: &str) -> Option<&'a Value> {
    status["replication"]
        .as_array()?
        .iter()
        .find(|l| l["subscriber"] == subscriber)
}

/// Inserts entry `id` on the publisher (acknowledged when this returns).
fn write(lab: &TestLab, id: u64) {
    lab.sql(
        "origin",
        &format!("INSERT INTO entries VALUES ({id}, 'entry {id}')"),
    );
}

fn has(lab: &TestLab, node: &str, id: u64) -> bool {
    lab.sql(node, &format!("SELECT count(*) FROM entries WHERE id = {id}")) == "1"
}

fn wait_for_row(lab: &TestLab, node: &str, id: u64) {
    poll(&format!("entry {id} on {node}"), LIMIT, || {
        has(lab, node, id).then_some(())
    });
}

#[test]
fn link_faults_act_through_the_link_proxy_and_nothing_acknowledged_is_lost() {
    let Some(_engine) = engine_answers() else { return };
    let name = format!("linkf_{}", std::process::id());
    let lab = TestLab::new(BIN).lab(&lab_file(&name)).file("ledger.sql", SCHEMA);
    lab.up();
    let proxy = format!("prodhome-{name}-link-proxy");
    assert!(containers_of(&name).contains(&proxy), "no {proxy}");
    for node in ["replica_a", "replica_b"] {
        let conninfo = lab.sql(node, "SELECT subconninfo FROM pg_subscription");
        assert!(conninfo.contains(&format!("host={proxy}")), "{node}: {conninfo}");
    }
    the_proxy_keeps_its_token_private(&lab, &proxy);
    let mut id = 0;
    a_killed_proxy_is_brought_back(&lab, &proxy, &mut id);
    latency_delays_one_subscriber(&lab, &mut id);
    partition_cuts_until_healed(&lab, &mut id);
    a_fault_outlives_a_killed_proxy(&lab, &proxy, &mut id);
    kill_and_pause_come_back(&lab, &mut id);
    a_node_cut_off_the_network_rejoins(&lab, &name, &mut id);

    for node in ["origin", "replica_a", "replica_b"] {
        assert_eq!(
            lab.sql(node, "SELECT count(*) FROM entries"),
            id.to_string(),
            "{node}"
        );
    }
    verify_ok(&lab);
    let out = lab.run(&["verify", "--ledger"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_success(&lab.run(&["down"]), "down");
    assert!(
        containers_of(&name).is_empty(),
        "down left {:?}",
        containers_of(&name)
    );
}

/// The control token is a 0600 file, absent from what `docker inspect`
/// shows (command line, environment); the proxy runs as no root, and
/// publishes its control endpoint on 127.0.0.1 only.
fn the_proxy_keeps_its_token_private(lab: &TestLab, proxy: &str) {
    use std::os::unix::fs::PermissionsExt;
    let file = lab.state().join("link-proxy.token");
    let token = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = std::process::Command::new("docker")
        .args(["inspect", proxy])
        .output()
        .expect("the docker CLI");
    assert!(out.status.success(), "{}", text(&out));
    let inspect: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = inspect.to_string();
    assert!(!shown.contains(token.trim()), "the token shows in docker inspect");
    let user = inspect[0]["Config"]["User"].as_str().unwrap();
    assert!(!user.is_empty() && !user.starts_with("0:"), "runs as {user:?}");
    let ports = inspect[0]["NetworkSettings"]["Ports"].as_object().unwrap();
    let bindings: Vec<&Value> = ports.values().filter_map(Value::as_array).flatten().collect();
    assert!(!bindings.is_empty(), "{ports:?}");
    assert!(bindings.iter().all(|b| b["HostIp"] == "127.0.0.1"), "{ports:?}");
}

/// The engine starts a killed link proxy again, at the same control port:
/// replication resumes through it, and faults reach it as before.
fn a_killed_proxy_is_brought_back(lab: &TestLab, proxy: &str, id: &mut u64) {
    let out = std::process::Command::new("docker")
        .args(["kill", proxy])
        .output()
        .expect("the docker CLI");
    assert!(out.status.success(), "{}", text(&out));
    *id += 1;
    write(lab, *id);
    for node in ["replica_a", "replica_b"] {
        wait_for_row(lab, node, *id);
    }
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    let said = format!(r#""unit":"{proxy}","kind":"restarting""#);
    assert!(events.contains(&said), "no {said} in {events}");
}

/// 800 ms on origin->replica_a: a row takes at least that long to reach
/// replica_a (a lower bound), the status names the fault and shows lag.
fn latency_delays_one_subscriber(lab: &TestLab, id: &mut u64) {
    let out = lab.run(&[
        "chaos",
        "latency",
        "origin:replica_a",
        "--delay",
        "800ms",
        "--jitter",
        "0ms",
    ]);
    assert_success(&out, "chaos latency");
    let status = lab.status();
    let fault = link(&status, "replica_a").unwrap()["fault"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(fault.contains("latency 800ms"), "{status}");
    poll("lag on the slow link", LIMIT, || {
        *id += 1;
        write(lab, *id);
        (link(&lab.status(), "replica_a")?["lag_bytes"].as_i64()? > 0).then_some(())
    });
    *id += 1;
    write(lab, *id);
    let written = Instant::now();
    wait_for_row(lab, "replica_a", *id);
    let took = written.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "entry {id} reached replica_a in {took:?}"
    );
    assert_success(&lab.run(&["chaos", "heal"]), "heal");
}

/// origin->replica_b cut: replica_a gets new rows, replica_b does not until
/// the heal, then converges.
fn partition_cuts_until_healed(lab: &TestLab, id: &mut u64) {
    let out = lab.run(&["chaos", "partition", "origin:replica_b"]);
    assert_success(&out, "chaos partition");
    poll("the link to show as cut", LIMIT, || {
        (link(&lab.status(), "replica_b")?["state"] == "cut").then_some(())
    });
    *id += 1;
    write(lab, *id);
    wait_for_row(lab, "replica_a", *id);
    assert!(!has(lab, "replica_b", *id), "entry {id} crossed a partition");
    assert_success(&lab.run(&["chaos", "heal"]), "heal");
    wait_for_row(lab, "replica_b", *id);
}

/// A partition in force when the link proxy is killed is put back on the
/// proxy the engine starts again (a `reapplied` event says when): replica_a
/// gets new rows, replica_b none until the heal.
fn a_fault_outlives_a_killed_proxy(lab: &TestLab, proxy: &str, id: &mut u64) {
    let reapplied = || {
        let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap_or_default();
        events
            .lines()
            .filter(|l| l.contains(r#""phase":"reapplied""#))
            .count()
    };
    let before = reapplied();
    assert_success(
        &lab.run(&["chaos", "partition", "origin:replica_b"]),
        "chaos partition",
    );
    let out = std::process::Command::new("docker")
        .args(["kill", proxy])
        .output()
        .expect("the docker CLI");
    assert!(out.status.success(), "{}", text(&out));
    poll("the partition put back on the restarted proxy", LIMIT, || {
        (reapplied() > before).then_some(())
    });
    *id += 1;
    write(lab, *id);
    wait_for_row(lab, "replica_a", *id);
    assert!(
        !has(lab, "replica_b", *id),
        "entry {id} crossed the partition the proxy restart dropped"
    );
    assert_success(&lab.run(&["chaos", "heal"]), "heal");
    wait_for_row(lab, "replica_b", *id);
}

/// A killed subscriber is restarted by the backend; a paused one resumes
/// when its fault ends; both catch up with what was written meanwhile.
fn kill_and_pause_come_back(lab: &TestLab, id: &mut u64) {
    assert_success(&lab.run(&["chaos", "kill", "replica_a"]), "chaos kill");
    assert_success(
        &lab.run(&["chaos", "pause", "replica_b", "--for", "3s"]),
        "chaos pause",
    );
    for _ in 0..5 {
        *id += 1;
        write(lab, *id);
    }
    poll("replica_a restarted", LIMIT, || {
        let node = lab.try_status()?["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == "replica_a")?
            .clone();
        (node["state"] == "ready" && node["restarts"].as_u64()? >= 1).then_some(())
    });
    for node in ["replica_a", "replica_b"] {
        wait_for_row(lab, node, *id);
    }
}

/// The networks `container` is on, as the engine says.
fn networks_of(container: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{json .NetworkSettings.Networks}}", container])
        .output()
        .expect("the docker CLI");
    assert!(out.status.success(), "{}", text(&out));
    let networks: Value = serde_json::from_slice(&out.stdout).unwrap();
    networks
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// A partition of the node itself (`chaos partition NODE --network`, the
/// API's node target) takes its container off the lab network through the
/// engine: the other subscriber goes on, this one gets nothing (from the
/// host it may not answer at all: its published port goes with the
/// network); the heal puts it back under its name, and it catches up.
fn a_node_cut_off_the_network_rejoins(lab: &TestLab, name: &str, id: &mut u64) {
    let container = format!("prodhome-{name}-replica_b");
    let network = format!("prodhome-{name}");
    let out = lab.run(&["chaos", "partition", "replica_b", "--network"]);
    assert_success(&out, "chaos partition --network");
    assert!(!networks_of(&container).contains(&network), "still on {network}");
    *id += 1;
    write(lab, *id);
    wait_for_row(lab, "replica_a", *id);
    let sql = format!("SELECT count(*) FROM entries WHERE id = {id}");
    let out = lab.run(&["psql", "replica_b", "-Atc", &sql]);
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !out.status.success() || seen == "0",
        "entry {id} reached a cut-off node"
    );
    assert_success(&lab.run(&["chaos", "heal"]), "heal");
    assert!(
        networks_of(&container).contains(&network),
        "not back on {network}"
    );
    wait_for_row(lab, "replica_b", *id);
}
