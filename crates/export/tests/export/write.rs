//! Writing an export: atomically, secrets at 0600, and never over a
//! directory another tool filled, unless forced.

use std::os::unix::fs::PermissionsExt as _;

use export::{ExportError, MARKER, Target};

use crate::shop;

#[test]
fn a_non_empty_directory_not_made_by_export_is_refused_unless_forced() {
    let bundle = shop(Target::Compose);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    match bundle.write(dir.path(), false) {
        Err(ExportError::NotOurs { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        !dir.path().join("compose.yaml").exists(),
        "nothing written on refusal"
    );
    let err = bundle.write(dir.path(), false).unwrap_err().to_string();
    assert!(err.contains("--force"), "{err}");
    bundle.write(dir.path(), true).unwrap();
    assert!(dir.path().join("compose.yaml").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn an_export_writes_again_into_its_own_directory_with_private_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    shop(Target::Stack).write(&out, false).unwrap();
    let written = shop(Target::Stack).write(&out, false).unwrap();
    assert!(written.iter().any(|p| p.ends_with(MARKER)));
    let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("secrets"), 0o700);
    assert_eq!(mode("secrets/secret-api-key"), 0o600);
    assert_eq!(mode("stack.yaml"), 0o644);
    let leftovers: Vec<_> = std::fs::read_dir(out.join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
