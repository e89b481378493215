//! Every `fixtures/bad/NAME.toml` must fail with exactly the text in
//! `NAME.expected`. Run with `LAB_BLESS=1` to rewrite the expected files from
//! the current output (then read the diff before keeping it).

use std::fs;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

#[test]
fn bad_labs_fail_with_the_expected_errors() {
    let dir = fixtures();
    let bless = std::env::var_os("LAB_BLESS").is_some();
    let mut labs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    labs.sort();
    assert!(
        labs.len() >= 40,
        "only {} fixtures in {}",
        labs.len(),
        dir.display()
    );

    let mut failures = Vec::new();
    for lab in &labs {
        let name = lab.file_name().unwrap();
        let source = fs::read_to_string(lab).unwrap();
        let actual = match lab::parse(&source, Path::new(name), &dir) {
            Ok(plan) => format!("(no errors; the lab parsed as {plan:#?})"),
            Err(errors) => errors.to_string(),
        };
        let expected_path = lab.with_extension("expected");
        if bless {
            fs::write(&expected_path, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected =
            fs::read_to_string(&expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if expected.trim_end() != actual {
            failures.push(format!(
                "{}\n--- expected\n{}\n--- actual\n{actual}\n",
                lab.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_expected_file_has_its_lab() {
    for entry in fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(
                path.with_extension("toml").exists(),
                "{} has no lab",
                path.display()
            );
        }
    }
}

/// A located error is worth little if the location is not where the mistake
/// is; this checks one by hand rather than trusting a blessed file.
#[test]
fn missing_subscriber_is_located_at_the_array_element() {
    let source = fs::read_to_string(fixtures().join("missing_subscriber.toml")).unwrap();
    let errors = lab::parse(&source, Path::new("missing_subscriber.toml"), &fixtures()).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    let error = &errors.0[0];
    let location = error.location.as_ref().unwrap();
    let line = source.lines().nth(location.line - 1).unwrap();
    let at: String = line.chars().skip(location.column - 1).collect();
    assert!(at.starts_with("\"subscriber3\""), "{at}");
    assert_eq!(
        error.message,
        "replication.books.subscribers[1]: no postgres node \"subscriber3\"; nodes are publisher, subscriber1"
    );
}

/// Git keeps no file modes, so the unreadable schema is made here. Root
/// reads a mode-000 file anyway; then the same read error is made another
/// way (a path through a regular file) so the message is still checked.
#[test]
fn an_unreadable_schema_is_located_with_the_os_reason() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked.sql");
    fs::write(&locked, "create table t (id int);\n").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let (schema, reason) = if fs::read(&locked).is_err() {
        ("locked.sql", "Permission denied")
    } else {
        eprintln!("mode 000 does not stop this user (root); using a path through a file instead");
        ("locked.sql/schema.sql", "Not a directory")
    };
    let source = format!(
        "name = \"shop\"\n[postgres.main]\n[postgres.replica]\n[replication.orders]\n\
         publisher = \"main\"\nsubscribers = [\"replica\"]\nschema = \"{schema}\"\n"
    );
    let errors = lab::parse(&source, Path::new("lab.toml"), dir.path()).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let text = errors.to_string();
    assert!(
        text.starts_with("lab.toml:7:10: replication.orders.schema: cannot read"),
        "{text}"
    );
    assert!(text.contains(schema) && text.contains(reason), "{text}");
    assert!(text.contains("help: "), "{text}");
}

/// The topology rules refuse loops and double sources, not the shapes
/// people build on purpose: a cascade, and one node gathering different
/// tables from several publishers.
#[test]
fn cascades_and_gathering_different_tables_are_valid() {
    let source = r#"name = "shop"
[postgres.a]
[postgres.b]
[postgres.c]
[postgres.reports]
[replication.ab]
publisher = "a"
subscribers = ["b", "reports"]
tables = ["orders"]
[replication.bc]
publisher = "b"
subscribers = ["c"]
tables = ["orders"]
[replication.c_reports]
publisher = "c"
subscribers = ["reports"]
tables = ["customers", "public.items"]
"#;
    if let Err(errors) = lab::parse(source, Path::new("lab.toml"), &fixtures()) {
        panic!("{errors}");
    }
    // The same lab closing the cascade into a circle is refused, at the
    // replication that closes it.
    let circle = format!(
        "{source}[replication.ca]\npublisher = \"c\"\nsubscribers = [\"a\"]\ntables = [\"public.orders\"]\n"
    );
    let errors = lab::parse(&circle, Path::new("lab.toml"), &fixtures()).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(
        errors.0[0]
            .message
            .starts_with("replication.ca: table \"orders\" goes round in a loop: a -> b -> c -> a"),
        "{errors}"
    );
}
