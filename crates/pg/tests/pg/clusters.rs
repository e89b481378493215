//! initdb, adoption of an existing cluster, start, roles.

use pg::{ErrorKind, REPLICATION_ROLE, SUPERUSER};

use crate::server::{Machine, one};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_made_once_then_adopted_and_its_roles_log_in_with_their_passwords() {
    let Some(machine) = Machine::new() else { return };
    let node = machine.start("alpha").await;
    assert!(node.data_dir().join("PG_VERSION").exists());
    assert_eq!(pg::postmaster_pid(node.data_dir()), Some(node.pid()));
    pg::check_reachable(&machine.account, node.data_dir()).expect("reachable");

    // A second `up` finds the cluster and makes nothing.
    let spec = std::slice::from_ref(&node.spec);
    let created = pg::ensure_clusters(&machine.bins, &machine.account, spec, None)
        .await
        .expect("ensure_clusters again");
    assert!(created.is_empty(), "made again: {created:?}");

    // Bootstrap is idempotent: every `up` runs it.
    let admin = node.bootstrapped().await;
    pg::bootstrap(&admin, "alpha", &node.spec.credentials)
        .await
        .expect("second bootstrap");
    let (login, replication, superuser): (bool, bool, bool) = {
        let row = admin
            .query_one(
                "SELECT rolcanlogin, rolreplication, rolsuper FROM pg_roles WHERE rolname = $1",
                &[&REPLICATION_ROLE],
            )
            .await
            .expect("replication role");
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!((login, replication, superuser), (true, true, false));
    let tables: i64 = one(
        &admin,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'prodhome' AND tablename IN ('probe', 'applied', 'ddl_queue')",
    )
    .await;
    assert_eq!(tables, 3);

    let creds = &node.spec.credentials;
    let su = pg::user(&node.spec, SUPERUSER, creds.superuser.expose()).await;
    assert_eq!(one::<i32>(&su.expect("superuser over TCP"), "SELECT 1").await, 1);
    let repl = pg::user(&node.spec, REPLICATION_ROLE, creds.replication.expose()).await;
    assert!(repl.is_ok(), "replication role over TCP: {:?}", repl.err());
    let wrong = pg::user(&node.spec, SUPERUSER, creds.replication.expose()).await;
    let Err(e) = wrong else {
        panic!("a wrong password logged in")
    };
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("could not connect to alpha"), "{e}");
    // The plain password never reaches the server's log.
    assert!(!node.log_text().contains(creds.superuser.expose()));
}

#[tokio::test]
async fn a_stopped_server_has_no_postmaster_pid_and_fails_its_probe_as_a_connect_error() {
    let Some(machine) = Machine::new() else { return };
    let spec = {
        let node = machine.start("beta").await;
        node.spec.clone()
    };
    // Dropped: stopped. Its pid file is gone or names no live postgres.
    assert_eq!(pg::postmaster_pid(&spec.data_dir), None);
    let e = pg::probe(&spec).await.expect_err("a stopped server answered");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
}

/// The system identifier in a cluster's `global/pg_control` (its first 8 bytes).
fn system_identifier(data_dir: &std::path::Path) -> u64 {
    let bytes = std::fs::read(data_dir.join("global/pg_control")).expect("pg_control");
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// The spares ready to take under `cache`.
fn spares(cache: &std::path::Path) -> usize {
    let Ok(versions) = std::fs::read_dir(cache.join("spares")) else {
        return 0;
    };
    versions
        .flatten()
        .flat_map(|v| std::fs::read_dir(v.path()).expect("spares dir").flatten())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_come_from_one_initdb_the_template_or_spares_each_with_an_identity_of_its_own() {
    let Some(machine) = Machine::new() else { return };
    // Private to whoever runs the test, as `~/.cache` is: when that is root,
    // the server account cannot enter it (a spare made there must still
    // get its identity).
    let cache = machine.dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let specs = |names: &[&str]| -> Vec<pg::NodeSpec> {
        names
            .iter()
            .map(|n| {
                let spec = machine.spec(n);
                machine.prepare(&spec);
                spec
            })
            .collect()
    };
    let first = specs(&["a", "b", "c"]);
    let made = pg::ensure_clusters(&machine.bins, &machine.account, &first, Some(&cache))
        .await
        .expect("first clusters");
    assert_eq!(made, ["a", "b", "c"]);
    assert_eq!(spares(&cache), 0);
    // The template is not on a cold `up`'s path: the first fill makes it.
    assert_eq!(template_in(&cache), None);

    let fill = || {
        pg::fill_spares(
            &machine.bins,
            &machine.account,
            &cache,
            machine.dir.path(),
            2,
            &|| true,
        )
    };
    // What an older prodhome left: a template of another format and its
    // spares, removed by the first fill; another version's are kept.
    let old = |name: &str| {
        let dir = cache.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("PG_VERSION"), "15\n").unwrap();
        dir
    };
    let version = &machine.bins.version;
    let stale = [
        old(&format!("pg{version}-v0")),
        old(&format!("spares/pg{version}-v0-u{}/1-1", machine.account.uid)),
    ];
    let kept = old("pg9.6.24-v1");
    let filled = fill().await.expect("fill spares");
    assert_eq!((filled, spares(&cache)), (2, 2));
    assert!(template_in(&cache).is_some(), "no template made");
    for dir in &stale {
        assert!(!dir.exists(), "{} was kept", dir.display());
    }
    assert!(
        !cache
            .join(format!("spares/pg{version}-v0-u{}", machine.account.uid))
            .exists()
    );
    assert!(kept.exists(), "another version's template was removed");
    std::fs::remove_dir_all(&kept).unwrap();
    let again = fill().await.expect("fill again");
    assert_eq!(again, 0, "topped up past what was wanted");
    // A filler told to stop makes nothing more.
    let stopped = pg::fill_spares(
        &machine.bins,
        &machine.account,
        &cache,
        machine.dir.path(),
        4,
        &|| false,
    )
    .await
    .expect("fill, stopped");
    assert_eq!((stopped, spares(&cache)), (0, 2));

    // Two nodes take the spares, the third is a copy of the template.
    let second = specs(&["d", "e", "f"]);
    let made = pg::ensure_clusters(&machine.bins, &machine.account, &second, Some(&cache))
        .await
        .expect("second clusters");
    assert_eq!(made, ["d", "e", "f"]);
    assert_eq!(spares(&cache), 0, "spares were not taken");

    let ids: std::collections::BTreeSet<u64> = first
        .iter()
        .chain(&second)
        .map(|s| system_identifier(&s.data_dir))
        .collect();
    assert_eq!(ids.len(), 6, "clusters share a system identifier: {ids:?}");
    // A taken spare and a template copy are clusters that start and answer,
    // their WAL of the identity in their pg_control (a mismatch is refused
    // at start: "WAL file is from different database system").
    for spec in [&second[0], &second[2]] {
        let node = machine.start_existing(spec.clone()).await;
        let admin = node.bootstrapped().await;
        let id: i64 = one(&admin, "SELECT system_identifier FROM pg_control_system()").await;
        assert_eq!(id as u64, system_identifier(&spec.data_dir), "{}", spec.name);
    }

    // A template whose WAL is not as a clean initdb leaves it (here its
    // first page header no longer says "long") is not patched in place:
    // pg_resetwal makes the copy's WAL anew, and the copy still starts.
    let segment = first_wal_segment(&cache);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("segment");
    std::os::unix::fs::FileExt::write_all_at(&file, &[0, 0], 2).expect("clear xlp_info");
    let third = specs(&["g"]);
    pg::ensure_clusters(&machine.bins, &machine.account, &third, Some(&cache))
        .await
        .expect("a copy of the altered template");
    let node = machine.start_existing(third[0].clone()).await;
    let admin = node.bootstrapped().await;
    let id: i64 = one(&admin, "SELECT system_identifier FROM pg_control_system()").await;
    assert_eq!(id as u64, system_identifier(&third[0].data_dir));
    assert!(!ids.contains(&(id as u64)), "the identity of another cluster");
}

/// The template cluster cached under `cache`, if any.
fn template_in(cache: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("PG_VERSION").exists())
}

/// The one WAL segment of the template cached under `cache`.
fn first_wal_segment(cache: &std::path::Path) -> std::path::PathBuf {
    let template = template_in(cache).expect("a template in the cache");
    let mut segments: Vec<_> = std::fs::read_dir(template.join("pg_wal"))
        .expect("pg_wal")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    segments.sort();
    segments.into_iter().next().expect("a WAL segment")
}
