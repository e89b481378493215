//! The seed lab's whole life: init, up, status, psql, env, verify, down,
//! up again, down --purge; and the foreground `up` stopped by SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

#[test]
fn seed_lab_comes_up_verifies_and_goes_down() {
    let lab = TestLab::new(BIN);
    let out = lab.up();
    assert!(
        text(&out).contains("built-in seed lab `bookstore`"),
        "{}",
        text(&out)
    );

    // The ready probe reads postmaster.pid while a server starts and
    // connects only once it says ready: no attempt was turned away.
    for node in ["publisher", "subscriber1", "subscriber2"] {
        let log = server_logs(&lab.state().join("nodes").join(node).join("data").join("log"));
        assert!(!log.is_empty(), "{node} wrote no server log");
        assert!(
            !log.contains("the database system is starting up"),
            "{node} was probed before it was ready:\n{log}"
        );
    }

    let status = lab.status();
    assert_eq!(status["lab"], "bookstore");
    assert_eq!(status["phase"], "ready");
    assert!(status["api"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert_eq!(node["state"], "ready", "{node}");
        assert_eq!(node["kind"], "postgres");
        assert!(node["pid"].as_u64().unwrap() > 0);
        assert_eq!(node["restarts"], 0);
    }
    let links = status["replication"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    for link in links {
        assert_eq!(link["name"], "books");
        assert_eq!(link["publisher"], "publisher");
        assert_eq!(link["state"], "streaming", "{link}");
    }

    lab.sql(
        "publisher",
        "insert into books (id, title) select g, 'book ' || g from generate_series(1000000001, 1000000500) g",
    );
    let verify = lab.run(&["verify", "--json"]);
    assert_success(&verify, "verify");
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["converged"], true);
    let table = &report["replications"][0]["tables"][0];
    assert_eq!(table["table"], "public.books");
    let rows = table["publisher"]["rows"].as_u64().unwrap();
    assert!(rows >= 500, "{table}");
    assert_eq!(table["subscribers"][1]["rows"], rows);

    // The seed lab's hum writes, the sampler samples, and both reach the
    // sinks: /metrics serves them, and the ledger's writes are all there.
    let api = status["api"].as_str().unwrap().to_string();
    poll(
        "/metrics to show lock and hum samples",
        Duration::from_secs(60),
        || {
            let (code, body) = testkit::http_get(&format!("{api}/metrics"))?;
            (code == 200 && body.contains("locks") && body.contains("hum")).then_some(())
        },
    );
    let proof = lab.run(&["verify", "--ledger", "--json"]);
    assert_success(&proof, "verify --ledger");
    let proof: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert!(proof["acknowledged"].as_u64().unwrap() > 0, "{proof}");
    assert_eq!(proof["lost"], 0);
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert!(events.contains(r#""kind":"hum","phase":"started""#), "{events}");

    // Credentials: env gives a working URL; secrets are 0600 and appear in
    // no other file prodhome wrote.
    let env = String::from_utf8(lab.run(&["env", "subscriber1"]).stdout).unwrap();
    assert!(env.contains("export PGHOST=127.0.0.1\n"), "{env}");
    assert!(
        env.contains("export DATABASE_URL=postgresql://postgres:"),
        "{env}"
    );
    let secrets_path = lab.state().join("secrets.json");
    let mode = std::fs::metadata(&secrets_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secrets: serde_json::Value = serde_json::from_slice(&std::fs::read(&secrets_path).unwrap()).unwrap();
    let passwords: Vec<String> = secrets["nodes"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| {
            [
                p["superuser"].as_str().unwrap().to_string(),
                p["replication"].as_str().unwrap().to_string(),
            ]
        })
        .collect();
    let status_text = text(&lab.run(&["status"])) + &text(&lab.run(&["status", "--json"]));
    assert_no_secret_in(&lab.state(), &secrets_path, &passwords, &status_text);

    // Down stops every process; up again reuses everything, creating nothing twice.
    assert_success(&lab.run(&["down"]), "down");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
    lab.up();
    assert_eq!(
        lab.sql(
            "subscriber2",
            "select count(*) from books where id between 1000000001 and 1000000500"
        ),
        "500"
    );
    assert_eq!(
        lab.sql("subscriber2", "select count(*) from pg_subscription"),
        "1"
    );
    assert_eq!(
        lab.sql("publisher", "select count(*) from pg_replication_slots"),
        "2"
    );
    assert_eq!(lab.sql("publisher", "select count(*) from prodhome.applied"), "1");

    assert_success(&lab.run(&["down", "--purge"]), "down --purge");
    assert!(!lab.state().exists());
    assert!(lab.processes().is_empty());
}

/// Every server log file in `dir`, concatenated.
fn server_logs(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

fn assert_no_secret_in(
    state: &std::path::Path,
    secrets: &std::path::Path,
    passwords: &[String],
    printed: &str,
) {
    for password in passwords {
        assert!(!printed.contains(password.as_str()), "a password was printed");
    }
    let mut stack = vec![state.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                // Postgres's own catalog files hold the (hashed) verifiers only.
                if path.file_name().is_some_and(|n| n != "data") {
                    stack.push(path);
                }
            } else if path != secrets {
                let bytes = std::fs::read(&path).unwrap_or_default();
                let content = String::from_utf8_lossy(&bytes);
                for password in passwords {
                    assert!(
                        !content.contains(password.as_str()),
                        "a password is in {}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn foreground_up_stops_everything_on_sigterm() {
    let lab = TestLab::new(BIN);
    assert_success(&lab.run(&["init"]), "init");
    assert!(lab.dir().join("prodhome.toml").exists() && lab.dir().join("schema.sql").exists());
    let again = lab.run(&["init"]);
    assert!(
        !again.status.success() && text(&again).contains("--force"),
        "{}",
        text(&again)
    );

    let mut child = lab
        .command()
        .arg("up")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    poll("the foreground lab to be ready", Duration::from_secs(120), || {
        assert!(child.try_wait().unwrap().is_none(), "up exited early");
        let out = lab.run(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (status["phase"] == "ready").then_some(())
    });
    let up_again = lab.run(&["up", "-d"]);
    assert!(text(&up_again).contains("already running"), "{}", text(&up_again));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let status = poll("up to exit after SIGTERM", Duration::from_secs(60), || {
        child.try_wait().unwrap()
    });
    assert!(status.success(), "{status}");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap();
    assert!(events.contains(r#""phase":"stopped""#), "{events}");
}

#[test]
fn doctor_says_ok_here_and_fails_with_the_fix_for_a_missing_version() {
    let lab = TestLab::new(BIN);
    let out = lab.run(&["doctor"]);
    assert_success(&out, "doctor");
    assert!(text(&out).contains("ok   PostgreSQL 15"), "{}", text(&out));

    let lab = lab.lab("name = \"old\"\npostgres_version = 11\n[postgres.a]\n");
    let out = lab.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("FAIL binaries: the lab pins PostgreSQL 11"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("apt-get install postgresql-11"),
        "{}",
        text(&out)
    );
}
