//! Bad input gets a located, actionable error, and leaves nothing half-made:
//! no server running, no cluster created.

use testkit::{TestLab, free_port};

use crate::{BIN, text};

/// Runs `up -d` and expects it to fail with every one of `expected` in its output.
fn up_fails(lab: &TestLab, expected: &[&str]) -> String {
    let out = lab.run(&["up", "-d", "--timeout", "60s"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for want in expected {
        assert!(all.contains(want), "expected {want:?} in:\n{all}");
    }
    assert!(!all.contains("panicked"), "{all}");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
    all
}

#[test]
fn lab_file_errors_are_located_and_start_nothing() {
    let cases: &[(&str, &[&str])] = &[
        ("name = \"x\"\n[postgres.a\n", &["prodhome.toml:2:"]),
        (
            "name = \"x\"\ncolour = 1\n[postgres.a]\n",
            &["prodhome.toml:2:1", "colour"],
        ),
        (
            "name = \"x\"\n[postgres.a]\n[replication.r]\npublisher = \"a\"\nsubscribers = [\"b\"]\n",
            &["prodhome.toml:5:", "no postgres node \"b\"", "a"],
        ),
        (
            "name = \"x\"\n[postgres.a]\nport = 20001\n[postgres.b]\nport = 20001\n",
            &["prodhome.toml:5:8", "20001"],
        ),
        (
            "name = \"x\"\n[postgres.a]\n[postgres.b]\n[replication.r]\npublisher = \"a\"\nsubscribers = [\"b\"]\nschema = \"nope.sql\"\n",
            &["prodhome.toml:7:10", "nope.sql"],
        ),
        (
            "name = \"x\"\n[postgres.a]\n[chaos]\nseed = 4\n",
            &["prodhome.toml:3:1", "expected [[chaos]] entries"],
        ),
    ];
    for (toml, expected) in cases {
        let lab = TestLab::new(BIN).lab(toml);
        up_fails(&lab, expected);
        assert!(!lab.state().exists(), "a bad lab file created state for:\n{toml}");
    }
}

#[test]
fn port_in_use_names_the_line_and_creates_no_cluster() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let port = taken.local_addr().unwrap().port();
    let lab = TestLab::new(BIN).lab(&format!("name = \"busy\"\n[postgres.a]\nport = {port}\n"));
    up_fails(
        &lab,
        &["prodhome.toml:3:8", &format!("port {port} is already in use")],
    );
    assert!(!lab.state().join("nodes/a/data").exists());
}

#[test]
fn missing_postgres_version_is_a_located_error_with_the_fix() {
    let lab = TestLab::new(BIN).lab("name = \"old\"\npostgres_version = 11\n[postgres.a]\n");
    up_fails(
        &lab,
        &[
            "prodhome.toml:2:20",
            "pins PostgreSQL 11",
            "apt-get install postgresql-11",
        ],
    );
}

#[test]
fn a_lab_file_changed_under_a_running_lab_is_refused() {
    let lab = TestLab::new(BIN).lab("name = \"moving\"\n[postgres.a]\n");
    lab.up();
    lab.write(
        "prodhome.toml",
        "name = \"moving\"\n[postgres.a]\nsettings = { work_mem = \"8MB\" }\n",
    );
    let out = lab.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("changed since lab moving was started"),
        "{}",
        text(&out)
    );
    assert_eq!(
        lab.status()["phase"],
        "ready",
        "the running lab must be left alone"
    );
}

#[test]
fn a_schema_changed_after_it_was_applied_is_refused_and_the_data_kept() {
    let lab = TestLab::new(BIN)
        .lab("name = \"s\"\n[postgres.p]\n[postgres.q]\n[replication.r]\npublisher = \"p\"\nsubscribers = [\"q\"]\nschema = \"s.sql\"\n")
        .file("s.sql", "create table t (id int primary key);\n");
    lab.up();
    lab.sql("p", "insert into t values (1), (2)");
    assert!(lab.run(&["down"]).status.success());
    lab.write("s.sql", "create table t (id int primary key, v text);\n");
    let all = up_fails(&lab, &["schema of replication r changed", "down --purge"]);
    assert!(!all.contains("already exists"), "{all}");
    lab.write("s.sql", "create table t (id int primary key);\n");
    lab.up();
    assert_eq!(lab.sql("q", "select count(*) from t"), "2");
}
