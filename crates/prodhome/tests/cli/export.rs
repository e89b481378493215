//! `prodhome export compose|stack|k8s`: the CLI writes the export with the
//! lab's own passwords (kept in its secrets store, the same on a second
//! export and for `prodhome secret`), prints none of them, and refuses a
//! directory it did not make. No server or engine needed.

use testkit::TestLab;

use crate::{BIN, text};

const LAB: &str = r#"name = "ledger"

[postgres.books_main]
port = 26432
[postgres.books_copy]

[replication.entries]
publisher = "books_main"
subscribers = ["books_copy"]
schema = "entries.sql"

[secret.signing_key]
length = 30
"#;

fn lab() -> TestLab {
    TestLab::new(BIN).lab(LAB).file(
        "entries.sql",
        "create table entries (id bigint primary key, amount numeric);\n",
    )
}

fn export(lab: &TestLab, args: &[&str]) -> std::process::Output {
    lab.command()
        .arg("export")
        .args(args)
        .output()
        .expect("run prodhome export")
}

#[test]
fn export_compose_writes_the_labs_own_secrets_and_prints_none() {
    let lab = lab();
    let out_dir = lab.dir().join("deploy");
    let out = export(&lab, &["compose", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let secret = std::fs::read_to_string(out_dir.join("secrets/secret-signing-key")).unwrap();
    assert_eq!(secret.len(), 30);
    assert!(!text(&out).contains(&secret), "a secret was printed");
    // The lab's store has the same value: `up` would use it too.
    let shown = lab.run(&["secret", "signing_key"]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), secret);
    let password = std::fs::read_to_string(out_dir.join("secrets/books_main-superuser")).unwrap();
    let compose = std::fs::read_to_string(out_dir.join("compose.yaml")).unwrap();
    assert!(!compose.contains(&password) && !compose.contains(&secret));
    assert!(compose.contains("127.0.0.1:26432:5432"), "{compose}");
    let schema = std::fs::read_to_string(out_dir.join("config/files/f1-entries-sql")).unwrap();
    assert!(schema.contains("create table entries"));

    // Exported again (as stack, into its own directory): the same passwords.
    let again = export(&lab, &["stack", "--out", out_dir.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again));
    let second = std::fs::read_to_string(out_dir.join("secrets/books_main-superuser")).unwrap();
    assert_eq!(second, password, "a second export must reuse the kept password");
}

#[test]
fn export_refuses_a_directory_it_did_not_make_and_says_what_to_do() {
    let lab = lab();
    let out_dir = lab.dir().join("mine");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("keep.txt"), "not an export").unwrap();
    let out = export(&lab, &["k8s", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert!(!out_dir.join("nodes.yaml").exists(), "nothing written");
    let forced = export(&lab, &["k8s", "--out", out_dir.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(out_dir.join("nodes.yaml").is_file());
}

#[test]
fn export_says_what_is_wrong_with_its_arguments() {
    let lab = lab();
    let none = export(&lab, &["compose"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none).contains("--out DIR"), "{}", text(&none));
    let cnpg = export(&lab, &["stack", "--cnpg", "--out", "x"]);
    assert_eq!(cnpg.status.code(), Some(1));
    assert!(
        text(&cnpg).contains("--cnpg is for `prodhome export k8s`"),
        "{}",
        text(&cnpg)
    );
    let what = export(&lab, &["helm", "--out", "x"]);
    assert!(text(&what).contains("compose, stack, k8s"), "{}", text(&what));
    assert!(!lab.dir().join("x").exists());
}
