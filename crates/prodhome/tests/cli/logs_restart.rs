//! Issue 13: a log rotation, a node restart and a daemon restart (kill -9,
//! then `up` adopting the node and starting it again) lose no line of the
//! node's log and count none twice: errors made on purpose before, between
//! and after them, some while no daemon runs, are all in the store exactly
//! once, and the store's count of messages equals the lines in the files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, assert_success, poll};

use crate::BIN;

const LAB: &str = r#"
name = "logturn"
postgres_version = 15

[postgres.db]

[sample]
interval = "200ms"
"#;

/// Makes `n` division-by-zero errors on the node (directly: no daemon needed).
fn divide_by_zero(lab: &TestLab, n: usize) {
    for _ in 0..n {
        let out = lab.run(&["psql", "db", "-v", "ON_ERROR_STOP=1", "-Atc", "SELECT 1/0"]);
        assert!(!out.status.success(), "SELECT 1/0 fails: {}", crate::text(&out));
    }
}

fn store_sum(lab: &TestLab, measurement: &str, keep: impl Fn(&store::query::Series) -> bool) -> i64 {
    let db = lab.state().join("metrics.db");
    store::query::series(&db, measurement, Some("db"), 0, Duration::ZERO)
        .unwrap_or_default()
        .iter()
        .filter(|s| s.field == "count" && keep(s))
        .map(|s| s.points.iter().map(|p| p.1).sum::<f64>() as i64)
        .sum()
}

fn divisions_counted(lab: &TestLab) -> i64 {
    store_sum(lab, "pg_log", |s| {
        s.tags.get("sqlstate").map(String::as_str) == Some("22012")
            && s.tags.get("severity").map(String::as_str) == Some("ERROR")
    })
}

fn log_dir(lab: &TestLab) -> PathBuf {
    lab.state().join("nodes/db/data/log")
}

/// The node's jsonlog files, oldest first.
fn log_files(lab: &TestLab) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log_dir(lab))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    files
}

fn lines_in(files: &[PathBuf]) -> i64 {
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default().lines().count() as i64)
        .sum()
}

/// Waits until the reader's checkpoint is at the end of the newest log
/// file and the store holds `errors` divisions by zero: everything logged
/// so far is counted (and the checkpoint is saved only once it is).
fn caught_up(lab: &TestLab, errors: i64) {
    let checkpoint = lab.state().join("pglog/db.json");
    poll(
        &format!("{errors} errors counted and the checkpoint at the log's end"),
        Duration::from_secs(60),
        || {
            let at: Value = serde_json::from_slice(&std::fs::read(&checkpoint).ok()?).ok()?;
            let newest = log_files(lab).pop()?;
            let size = std::fs::metadata(&newest).ok()?.len();
            let at_end = Path::new(at["path"].as_str()?) == newest && at["offset"].as_u64()? == size;
            (at_end && divisions_counted(lab) == errors).then_some(())
        },
    );
}

fn daemon_pid(lab: &TestLab) -> i32 {
    let info: Value =
        serde_json::from_slice(&std::fs::read(lab.state().join("daemon.json")).unwrap()).unwrap();
    info["pid"].as_i64().unwrap() as i32
}

#[test]
fn rotation_node_restart_and_daemon_restart_count_every_log_line_once() {
    let lab = TestLab::new(BIN).lab(LAB);
    lab.up();
    divide_by_zero(&lab, 3);
    caught_up(&lab, 3);

    // A rotation: the collector moves on to a new file.
    // A rotation in the same second its file was opened reuses the file's
    // name (log_filename has seconds), and the server appends to it: ask
    // again until the collector has opened a new file.
    let before = log_files(&lab).len();
    poll(
        "a new log file after the rotation",
        Duration::from_secs(30),
        || {
            lab.sql("db", "SELECT pg_rotate_logfile()");
            (log_files(&lab).len() > before).then_some(())
        },
    );
    divide_by_zero(&lab, 2);
    caught_up(&lab, 5);

    // The node restarted by the daemon: a new file for the new start.
    assert_success(&lab.run(&["restart", "db"]), "prodhome restart db");
    poll("db ready again", Duration::from_secs(60), || {
        (lab.node("db")["state"] == "ready").then_some(())
    });
    divide_by_zero(&lab, 2);
    caught_up(&lab, 7);

    // The daemon killed: the node runs on, logging errors no one reads...
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon_pid(&lab)),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    poll("the daemon gone", Duration::from_secs(30), || {
        (lab.try_status()?["phase"] == "stopped").then_some(())
    });
    divide_by_zero(&lab, 2);
    // ...until the next daemon, which adopts the node (stops and starts it:
    // one more file), goes on from the checkpoint.
    lab.up();
    divide_by_zero(&lab, 1);
    caught_up(&lab, 10);

    let files = log_files(&lab);
    // At least the first file and the rotation's: a start in the same
    // second as the file before it reuses that name (log_filename has
    // seconds) and appends to it.
    assert!(files.len() >= 2, "no file after the rotation: {files:?}");
    // The server may log a line of its own meanwhile (a checkpoint): the
    // counts meet once the reader has it too. Counted twice, they never do.
    let mut last = (0, 0);
    let met = (0..300).any(|_| {
        let files = log_files(&lab);
        last = (store_sum(&lab, "pg_log", |_| true), lines_in(&files));
        if last.0 == last.1 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(
        met,
        "messages counted vs lines in {files:?}: {last:?} (dropped: {})",
        store_sum(&lab, "pg_log_dropped", |_| true)
    );
    assert_eq!(divisions_counted(&lab), 10);
}
