//! The exported lab deployed for real: `prodhome export compose` run by
//! Debian's docker-compose 1.29, and `prodhome export stack` deployed on a
//! single-node Docker Swarm (made by the test when the engine is not in
//! one, and left afterwards). In both, the controller (this prodhome, in
//! its image) sets replication up on nodes the engine runs; the test waits
//! until it reports every subscription streaming, writes on the publisher
//! through its published port, sees the rows on every subscriber, runs
//! `verify` from this machine against the deployment, and faults a
//! replication link through the controller (a node itself it refuses: the
//! engine's); under compose, `soak` runs in the controller too. Everything
//! is removed when the test ends, failed or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, free_port, poll};

use crate::BIN;
use crate::containers::{engine_alone, engine_answers};

/// Waits for an engine: images to start, a Postgres to initialise, the
/// controller to set replication up (Swarm schedules in seconds).
const DEPLOY: Duration = Duration::from_secs(240);

/// A lab unlike the seed: its own names, two subscribers (two links in the
/// controller), a schema with rows, a named secret, hum's TPC-B load on
/// the publisher and the sampler's Prometheus sink.
fn lab_toml(ports: &Ports) -> String {
    format!(
        r#"name = "ledger_{tag}"
api_port = {api}

[postgres.books_main]
port = {main}
[postgres.books_copy]
port = {copy}
[postgres.books_audit]
port = {audit}

[replication.entries]
publisher = "books_main"
subscribers = ["books_copy", "books_audit"]
schema = "db/entries.sql"
tables = ["entries"]

[secret.signing_key]
length = 24

[hum]
node = "books_main"
workload = "tpcb"
clients = 2
rate = 20

[sample]
interval = "1s"
sinks = ["embedded", "prometheus"]
"#,
        tag = ports.api,
        api = ports.api,
        main = ports.main,
        copy = ports.copy,
        audit = ports.audit,
    )
}

const SCHEMA: &str = "create table entries (id bigint primary key, amount numeric(12,2) not null, memo text);\n\
insert into entries select g, g * 1.25, 'opening ' || g from generate_series(1, 300) g;\n";

const SUBSCRIBERS: [&str; 2] = ["books_copy", "books_audit"];

struct Ports {
    api: u16,
    main: u16,
    copy: u16,
    audit: u16,
}

/// The lab exported for `engine` into `export/`, its images built.
fn exported(engine: &str) -> (TestLab, Ports) {
    let ports = Ports {
        api: free_port(),
        main: free_port(),
        copy: free_port(),
        audit: free_port(),
    };
    let lab = TestLab::new(BIN).lab(&lab_toml(&ports));
    std::fs::create_dir(lab.dir().join("db")).expect("mkdir db");
    lab.write("db/entries.sql", SCHEMA);
    assert_success(&lab.run(&["image", "build"]), "prodhome image build");
    assert_success(
        &lab.run(&["export", engine, "--out", "export"]),
        &format!("prodhome export {engine}"),
    );
    (lab, ports)
}

fn docker(args: &[&str], dir: &Path) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", args[0]))
}

/// Runs `args`, which must succeed: the failure shows what it printed.
fn docker_ok(args: &[&str], dir: &Path) {
    let out = docker(args, dir);
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        args.join(" "),
        out_text(&out)
    );
}

fn out_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The controller's status over its published port, once it answers.
fn status(api: u16) -> Option<Value> {
    let (code, body) = testkit::http_get(&format!("http://127.0.0.1:{api}/api/status"))?;
    (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

/// Every replication path streaming, by the controller's word.
fn synced(status: &Value) -> bool {
    let paths = status["replication"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    status["phase"] == "ready"
        && paths.len() == SUBSCRIBERS.len()
        && paths.iter().all(|p| p["state"] == "streaming")
}

/// Waits until the controller reports every subscription synced; on a
/// timeout, the controller's own log says why.
fn wait_synced(api: u16, logs: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + DEPLOY;
    loop {
        let now = status(api);
        if now.as_ref().is_some_and(synced) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the controller did not report every subscription streaming within {DEPLOY:?}; last status: {now:?}\n\
             controller log:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A write on the publisher (through its published port) reaches every
/// subscriber; `verify` from this machine proves the deployment converged.
fn write_and_verify(lab: &TestLab, id: u32) {
    lab.sql(
        "books_main",
        &format!("insert into entries values ({id}, 9.99, 'through the published port')"),
    );
    for sub in SUBSCRIBERS {
        poll(&format!("row {id} on {sub}"), DEPLOY, || {
            let count = lab.sql(sub, &format!("select count(*) from entries where id = {id}"));
            (count == "1").then_some(())
        });
    }
    let verify = lab.run(&["verify", "--json"]);
    assert_success(&verify, "prodhome verify against the deployment");
    let proof: Value = serde_json::from_slice(&verify.stdout).expect("verify JSON");
    assert_eq!(proof["ok"], true, "{proof}");
    assert_eq!(proof["converged"], true, "{proof}");
}

/// The sampler and hum run in the controller: their series are on its
/// `/metrics`, for a node it does not run.
fn sampled(api: u16) {
    poll(
        "the controller's /metrics with the sampler's and hum's series",
        DEPLOY,
        || {
            let (_, body) = testkit::http_get(&format!("http://127.0.0.1:{api}/metrics"))?;
            let lag = body
                .lines()
                .any(|l| l.contains("replication") && l.contains("books_audit"));
            let hum = body.lines().any(|l| l.starts_with("prodhome_hum"));
            (lag && hum).then_some(())
        },
    );
}

/// `prodhome ARGS` in the controller's container, on its lab and state.
fn in_controller(lab: &TestLab, container: &str, args: &[&str]) -> Output {
    let mut argv = vec![
        "docker",
        "exec",
        container,
        "prodhome",
        "-f",
        "/etc/prodhome/lab.toml",
        "--state-dir",
        "/var/lib/prodhome",
    ];
    argv.extend_from_slice(args);
    docker(&argv, lab.dir())
}

/// The CLI inside the controller's container: a replication link
/// partitioned shows in its status while the other subscriber gets a row;
/// healed, the row arrives; a node fault is refused, naming the engine;
/// `verify` there reaches the engine's servers too.
fn through_the_controller(lab: &TestLab, api: u16, container: &str) {
    let prodhome = |args: &[&str]| in_controller(lab, container, args);
    let chaos = |args: &[&str]| prodhome(&[&["chaos"], args].concat());
    let killed = chaos(&["kill", "books_main"]);
    assert!(!killed.status.success(), "{}", out_text(&killed));
    assert!(
        out_text(&killed).contains("runs under its engine"),
        "{}",
        out_text(&killed)
    );

    let cut = chaos(&["partition", "books_main:books_audit"]);
    assert!(cut.status.success(), "{}", out_text(&cut));
    poll("the partition in the controller's status", DEPLOY, || {
        let s = status(api)?;
        let paths = s["replication"].as_array()?.clone();
        paths
            .iter()
            .any(|p| p["subscriber"] == "books_audit" && !p["fault"].is_null())
            .then_some(())
    });
    lab.sql(
        "books_main",
        "insert into entries values (777001, 1, 'during the cut')",
    );
    poll("the row on the subscriber whose link is up", DEPLOY, || {
        (lab.sql("books_copy", "select count(*) from entries where id = 777001") == "1").then_some(())
    });
    let healed = chaos(&["heal"]);
    assert!(healed.status.success(), "{}", out_text(&healed));
    poll("the row on books_audit once its link is healed", DEPLOY, || {
        (lab.sql("books_audit", "select count(*) from entries where id = 777001") == "1").then_some(())
    });
    let verify = prodhome(&["verify", "--json"]);
    assert!(
        verify.status.success(),
        "verify in the controller:\n{}",
        out_text(&verify)
    );
    let proof: Value = serde_json::from_slice(&verify.stdout).expect("verify JSON");
    assert_eq!(proof["converged"], true, "{proof}");
}

/// `soak` in the controller's container, with the faults it can do there
/// (on links): load through its client links, faults on its replication
/// links, nothing acknowledged lost, the subscribers converged.
fn soak_in_the_controller(lab: &TestLab, container: &str) {
    let out = in_controller(
        lab,
        container,
        &[
            "soak",
            "-T",
            "12s",
            "--faults",
            "partition,latency,reset",
            "-R",
            "20",
            "--json",
        ],
    );
    let log = || out_text(&docker(&["docker", "logs", "--tail", "60", container], lab.dir()));
    assert!(
        out.status.success(),
        "soak in the controller:\n{}\ncontroller log:\n{}",
        out_text(&out),
        log()
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("soak JSON");
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert!(verdict["acknowledged"].as_u64().unwrap_or(0) > 0, "{verdict}");
    assert!(
        verdict["faults"].as_object().is_some_and(|f| !f.is_empty()),
        "{verdict}"
    );
}

/// `docker-compose up -d` of the export, taken down (volumes too) on drop.
struct ComposeProject {
    name: String,
    dir: PathBuf,
}

impl ComposeProject {
    fn up(dir: &Path, name: &str) -> ComposeProject {
        let project = ComposeProject {
            name: name.into(),
            dir: dir.into(),
        };
        let argv = ["docker-compose", "-p", name, "-f", "compose.yaml", "up", "-d"];
        docker_ok(&argv, dir);
        project
    }

    fn logs(&self) -> String {
        out_text(&docker(
            &[
                "docker-compose",
                "-p",
                &self.name,
                "-f",
                "compose.yaml",
                "logs",
                "--tail",
                "40",
                "controller",
            ],
            &self.dir,
        ))
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = docker(
            &[
                "docker-compose",
                "-p",
                &self.name,
                "-f",
                "compose.yaml",
                "down",
                "-v",
                "--remove-orphans",
            ],
            &self.dir,
        );
    }
}

fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        testkit::skip(&format!("{program} is not installed"));
    }
    found
}

#[test]
fn the_compose_export_runs_as_the_lab_under_docker_compose() {
    let Some(_engine) = engine_answers() else { return };
    if !have("docker-compose") {
        return;
    }
    let (lab, ports) = exported("compose");
    let name = format!("phdeploy{}", ports.api);
    let project = ComposeProject::up(&lab.dir().join("export"), &name);
    wait_synced(ports.api, || project.logs());
    write_and_verify(&lab, 5001);
    sampled(ports.api);
    let controller = format!("{name}_controller_1");
    through_the_controller(&lab, ports.api, &controller);
    soak_in_the_controller(&lab, &controller);
}

/// A single-node Swarm for the test: the engine's own when it is in one
/// already, else one made here and left on drop.
struct Swarm {
    made: bool,
    gwbridge_before: bool,
}

impl Swarm {
    fn join() -> Swarm {
        let state = docker(
            &["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
            Path::new("/"),
        );
        let gwbridge_before = docker(
            &["docker", "network", "inspect", "docker_gwbridge"],
            Path::new("/"),
        )
        .status
        .success();
        if String::from_utf8_lossy(&state.stdout).trim() == "active" {
            return Swarm {
                made: false,
                gwbridge_before,
            };
        }
        // The loopback only: never the machine's external interface.
        let argv = [
            "docker",
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            "127.0.0.1:2377",
        ];
        docker_ok(&argv, Path::new("/"));
        Swarm {
            made: true,
            gwbridge_before,
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.made {
            let _ = docker(&["docker", "swarm", "leave", "--force"], Path::new("/"));
            if !self.gwbridge_before {
                let _ = docker(&["docker", "network", "rm", "docker_gwbridge"], Path::new("/"));
            }
        }
    }
}

/// `docker stack deploy` of the export, removed (with its volumes, once
/// its containers are gone) on drop.
struct Stack {
    name: String,
}

impl Stack {
    fn deploy(dir: &Path, name: &str) -> Stack {
        let stack = Stack { name: name.into() };
        let argv = [
            "docker",
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            "stack.yaml",
            name,
        ];
        docker_ok(&argv, dir);
        stack
    }

    /// The running container of the stack's controller.
    fn controller(&self) -> String {
        let filter = format!("label=com.docker.swarm.service.name={}_controller", self.name);
        poll("the controller's container", DEPLOY, || {
            let out = docker(&["docker", "ps", "-q", "--filter", &filter], Path::new("/"));
            let id = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()?
                .trim()
                .to_string();
            (!id.is_empty()).then_some(id)
        })
    }

    fn logs(&self) -> String {
        let service = format!("{}_controller", self.name);
        out_text(&docker(
            &["docker", "service", "logs", "--tail", "40", &service],
            Path::new("/"),
        ))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = docker(&["docker", "stack", "rm", &self.name], Path::new("/"));
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        // Bounded: the engine removes the tasks' containers asynchronously.
        for _ in 0..240 {
            let left = docker(&["docker", "ps", "-aq", "--filter", &label], Path::new("/"));
            if left.stdout.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let volumes = docker(
            &["docker", "volume", "ls", "-q", "--filter", &label],
            Path::new("/"),
        );
        for volume in String::from_utf8_lossy(&volumes.stdout).split_whitespace() {
            let _ = docker(&["docker", "volume", "rm", "-f", volume], Path::new("/"));
        }
    }
}

#[test]
fn the_stack_export_runs_as_the_lab_on_a_docker_swarm() {
    // Alone: leaving the Swarm drops every running container's port
    // mappings (Docker 20.10), which would break the other engine tests.
    let Some(_engine) = engine_alone() else { return };
    let (lab, ports) = exported("stack");
    let _swarm = Swarm::join();
    let stack = Stack::deploy(&lab.dir().join("export"), &format!("phstack{}", ports.api));
    wait_synced(ports.api, || stack.logs());
    write_and_verify(&lab, 6001);
    sampled(ports.api);
    through_the_controller(&lab, ports.api, &stack.controller());
}
