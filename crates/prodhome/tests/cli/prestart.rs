//! Mistakes only this machine reveals are found before anything starts, and
//! a node or service that fails on its first start fails `up` at once with
//! its cause (issue 17, items 2 and 3): no restarts until the timeout, no
//! error without a place.

use testkit::{TestLab, free_port};

use crate::{BIN, text};

/// `up -d` (or `up` with `args`) must fail with exit 1 and every one of
/// `expected` in its output, leaving no process behind.
fn up_fails(lab: &TestLab, args: &[&str], expected: &[&str]) -> String {
    let out = lab.run(args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for want in expected {
        assert!(all.contains(want), "expected {want:?} in:\n{all}");
    }
    assert!(!all.contains("panicked"), "{all}");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
    all
}

const UP_D: &[&str] = &["up", "-d", "--timeout", "120s"];

#[test]
fn a_misspelled_setting_fails_up_at_once_with_its_place_and_the_right_name() {
    let lab =
        TestLab::new(BIN).lab("name = \"typo\"\n[postgres.publisher]\nsettings = { max_conections = 200 }\n");
    let want = "prodhome.toml:3:14: postgres.publisher.settings.max_conections: \
                unknown Postgres setting \"max_conections\"; did you mean \"max_connections\"?";
    up_fails(&lab, UP_D, &[want]);
    assert!(
        !lab.state().exists(),
        "state was created for a lab that cannot start"
    );
    // The foreground `up` checks the same way.
    up_fails(&lab, &["up", "--timeout", "120s"], &[want]);
    assert!(!lab.state().exists());
}

#[test]
fn setting_values_of_the_wrong_kind_or_range_are_located_at_the_value() {
    let lab = TestLab::new(BIN).lab(
        "name = \"values\"\n\
         [postgres.a]\n\
         settings = { shared_buffers = \"lots\", work_mem = \"4MB\" }\n\
         [postgres.b]\n\
         settings = { max_connections = -5, \"pg_stat_statements.max\" = 100, synchronous_commit = \"maybe\" }\n",
    );
    let all = up_fails(
        &lab,
        UP_D,
        &[
            "prodhome.toml:3:31: postgres.a.settings.shared_buffers: PostgreSQL 15",
            "invalid value for parameter \"shared_buffers\": \"lots\"",
            "`shared_buffers` takes an integer",
            "prodhome.toml:5:32: postgres.b.settings.max_connections: PostgreSQL 15",
            "-5 is outside the valid range for parameter \"max_connections\" (1 .. 262143)",
            "prodhome.toml:5:89: postgres.b.settings.synchronous_commit:",
            "Available values: local, remote_write, remote_apply, on, off.",
        ],
    );
    // A setting of an extension (with its prefix) and a good value pass.
    assert!(
        !all.contains("pg_stat_statements") && !all.contains("work_mem"),
        "{all}"
    );
    assert!(!lab.state().exists());
}

#[test]
fn a_service_command_that_does_not_exist_is_a_located_error_before_anything_starts() {
    let lab = TestLab::new(BIN).lab(
        "name = \"ghost\"\n\
         [postgres.db]\n\
         [service.app]\n\
         command = [\"./bin/no-such-app\", \"--port\", \"1\"]\n\
         [service.tool]\n\
         command = [\"no-such-tool-on-path\"]\n\
         depends_on = { app = \"started\" }\n",
    );
    up_fails(
        &lab,
        UP_D,
        &[
            "prodhome.toml:4:11: service.app.command: no program \"./bin/no-such-app\"",
            "prodhome.toml:6:11: service.tool.command: no program \"no-such-tool-on-path\" on PATH",
        ],
    );
    assert!(!lab.state().exists());
}

#[test]
fn a_setting_the_server_refuses_at_start_fails_up_with_its_fatal_line() {
    // Valid to the config parser; only a start finds the library missing.
    let lab = TestLab::new(BIN)
        .lab("name = \"preload\"\n[postgres.db]\nsettings = { shared_preload_libraries = \"nope\" }\n");
    let all = up_fails(
        &lab,
        UP_D,
        &[
            "node db did not become ready: it failed on its first start: FATAL: could not access file \"nope\"",
            "It was not restarted",
        ],
    );
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap_or_default();
    assert!(
        !events.contains("\"kind\":\"restarting\""),
        "restarted:\n{events}"
    );
    assert!(!events.contains("\"kind\":\"crash_loop\""), "{events}");
    assert!(!all.contains("did not become ready within"), "{all}");
}

#[test]
fn a_service_that_exits_before_it_was_ever_ready_fails_up_with_its_exit_and_log() {
    let port = free_port();
    let lab = TestLab::new(BIN).lab(&format!(
        "name = \"early\"\n\
         [postgres.db]\n\
         [service.app]\n\
         command = [\"sh\", \"-c\", \"echo cannot read config.yml >&2; exit 1\"]\n\
         ready = {{ tcp = {port}, interval = \"100ms\" }}\n\
         depends_on = {{ db = \"ready\" }}\n"
    ));
    up_fails(
        &lab,
        UP_D,
        &[
            "service app did not become ready: it failed on its first start, it ended with exit code 1 before it was ready",
            "It was not restarted",
            "cannot read config.yml",
        ],
    );
    let events = std::fs::read_to_string(lab.state().join("events.jsonl")).unwrap_or_default();
    assert!(
        !events.contains("\"kind\":\"restarting\""),
        "restarted:\n{events}"
    );
}
