//! The seed lab, checked field by field: it is the first lab anyone sees.

use std::fs;
use std::io;
use std::path::Path;

use lab::init::{SEED_SCHEMA, SEED_TOML, write_seed};
use lab::{Location, NodePlan, Plan, ReplicationPlan, SchemaFile, Tables};
use sha2::{Digest, Sha256};

fn expected_fingerprint() -> String {
    let mut hasher = Sha256::new();
    hasher.update(SEED_TOML.as_bytes());
    hasher.update(SEED_SCHEMA.as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn node(name: &str) -> NodePlan {
    NodePlan {
        name: name.into(),
        port: None,
        port_at: None,
        settings: Vec::new(),
        settings_at: Vec::new(),
        host: None,
    }
}

/// The seed lab as a plan, from `file` in `dir`.
fn expected_plan(file: Option<&Path>, dir: &Path) -> Plan {
    let version_line = SEED_TOML
        .lines()
        .position(|l| l.starts_with("postgres_version"))
        .unwrap();
    Plan {
        name: "bookstore".into(),
        file: file.map(Path::to_path_buf),
        dir: dir.to_path_buf(),
        postgres_version: 15,
        postgres_version_at: Some(Location {
            file: file.unwrap_or(Path::new(lab::SEED_FILE)).to_path_buf(),
            line: version_line + 1,
            column: "postgres_version = ".len() + 1,
        }),
        backend: lab::Backend::Native,
        backend_at: None,
        run_as: None,
        api_port: None,
        nodes: vec![node("publisher"), node("subscriber1"), node("subscriber2")],
        replications: vec![ReplicationPlan {
            name: "books".into(),
            publisher: "publisher".into(),
            subscribers: vec!["subscriber1".into(), "subscriber2".into()],
            schema: Some(SchemaFile {
                path: dir.join("schema.sql"),
                sql: SEED_SCHEMA.into(),
            }),
            tables: Tables::List(vec!["books".into()]),
            ddl: lab::Ddl::Follow,
        }],
        seed: 1,
        chaos: Vec::new(),
        services: Vec::new(),
        secrets: Vec::new(),
        alert: None,
        data: Vec::new(),
        hum: Some(lab::HumPlan {
            node: "publisher".into(),
            workload: lab::HumWorkload::Books,
            clients: 4,
            rate: Some(50.0),
            scale: 1,
            read_from: vec!["subscriber1".into(), "subscriber2".into()],
            seed: 1,
            long_transactions: 0.0,
            disconnects: 0.0,
            spikes: false,
        }),
        sample: lab::SamplePlan {
            prometheus: true,
            ..lab::SamplePlan::default()
        },
        fingerprint: expected_fingerprint(),
    }
}

#[test]
fn the_seed_lab_parses_into_the_expected_plan() {
    let dir = tempfile::tempdir().unwrap();
    write_seed(dir.path(), false).unwrap();
    let file = dir.path().join("prodhome.toml");
    let plan = lab::parse(SEED_TOML, &file, dir.path()).unwrap();
    assert_eq!(plan, expected_plan(Some(&file), dir.path()));
    assert_eq!(plan.node("subscriber2"), Some(&node("subscriber2")));
    assert_eq!(plan.node("nobody"), None);
}

#[test]
fn seed_needs_no_files() {
    let cwd = std::env::current_dir().unwrap();
    let plan = lab::seed();
    assert_eq!(plan, expected_plan(None, &cwd));
    assert_eq!(plan.fingerprint, expected_fingerprint());
}

#[test]
fn the_seed_schema_creates_only_books() {
    let creates: Vec<&str> = SEED_SCHEMA
        .lines()
        .filter(|l| l.starts_with("create table"))
        .collect();
    assert_eq!(creates, ["create table books ("]);
}

#[test]
fn write_seed_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let lab_file = dir.path().join("prodhome.toml");
    fs::write(&lab_file, "name = \"mine\"\n").unwrap();
    let error = write_seed(dir.path(), false).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    assert!(error.to_string().contains("prodhome.toml"), "{error}");
    assert_eq!(fs::read_to_string(&lab_file).unwrap(), "name = \"mine\"\n");
    assert!(!dir.path().join("schema.sql").exists());
}

#[test]
fn a_changed_schema_changes_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    write_seed(dir.path(), false).unwrap();
    let file = dir.path().join("prodhome.toml");
    let before = lab::load(&file).unwrap().fingerprint;
    fs::write(
        dir.path().join("schema.sql"),
        format!("{SEED_SCHEMA}-- changed\n"),
    )
    .unwrap();
    let after = lab::load(&file).unwrap().fingerprint;
    assert_ne!(before, after);
}
