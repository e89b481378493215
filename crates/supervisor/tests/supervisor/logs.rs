//! Logs: rotation by size without losing a line, and which log mode
//! survives the supervisor's death.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use supervisor::{LogMode, UnitState};

use super::{Harness, poll, read, sh};

const LINES: usize = 2000;
const MAX_BYTES: u64 = 4096;

/// LINES numbered lines on stdout and on stderr, interleaved, then a
/// closing line on each, then quiet.
fn chatty() -> String {
    format!(
        "i=0; while [ $i -lt {LINES} ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done; \
         echo 'out done'; echo 'err done' >&2; exec sleep 60"
    )
}

/// The log and its rotated files, oldest first.
fn files(log: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..100)
        .map(|n| PathBuf::from(format!("{}.{n}", log.display())))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(log.to_path_buf());
    files
}

/// Every line of the log, oldest first, once both closing lines are in.
fn all_lines(log: &Path) -> Option<Vec<String>> {
    let lines: Vec<String> = files(log)
        .iter()
        .flat_map(|f| read(f).lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let done = |s: &str| lines.iter().any(|l| l == s);
    (done("out done") && done("err done")).then_some(lines)
}

/// The numbers of one stream's lines, in the order they were logged.
fn numbers(lines: &[String], stream: &str) -> Vec<usize> {
    let prefix = format!("{stream} ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .collect()
}

#[tokio::test]
async fn the_log_rotates_at_its_size_limit_and_loses_no_line() {
    let mut h = Harness::new();
    let mut spec = sh("chatty", &chatty(), h.dir());
    spec.log_mode = LogMode::Rotated {
        max_bytes: MAX_BYTES,
        keep: 50,
    };
    let unit = h.spawn(spec);
    unit.start().await;
    let log = unit.log_path().to_path_buf();
    let lines = poll("every line in the log", Duration::from_secs(30), || {
        all_lines(&log)
    })
    .await;
    let every: Vec<usize> = (0..LINES).collect();
    assert_eq!(numbers(&lines, "out"), every, "stdout, in order, each once");
    assert_eq!(numbers(&lines, "err"), every, "stderr, in order, each once");
    assert_eq!(lines.len(), 2 * LINES + 2, "nothing else, nothing torn");
    let files = files(&log);
    // ~36 KB in files of at most 4 KiB.
    assert!(files.len() >= 9, "{} files", files.len());
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= MAX_BYTES, "{} has {size} bytes", f.display());
    }
    // Both streams really are interleaved, line by line, as they came.
    let first_err = lines.iter().position(|l| l.starts_with("err ")).unwrap();
    let last_out = lines.iter().rposition(|l| l.starts_with("out ")).unwrap();
    assert!(
        first_err < last_out / 2,
        "stderr came late: line {first_err} of {last_out}"
    );
    unit.stop().await;
}

#[tokio::test]
async fn rotation_keeps_only_the_newest_files() {
    let mut h = Harness::new();
    let mut spec = sh("pruned", &chatty(), h.dir());
    spec.log_mode = LogMode::Rotated {
        max_bytes: MAX_BYTES,
        keep: 2,
    };
    let unit = h.spawn(spec);
    unit.start().await;
    let log = unit.log_path().to_path_buf();
    let lines = poll("the closing lines", Duration::from_secs(30), || all_lines(&log)).await;
    assert_eq!(files(&log).len(), 3, "{:?}", files(&log));
    assert!(!PathBuf::from(format!("{}.3", log.display())).exists());
    // What is kept is the newest part of each stream, without a gap.
    for stream in ["out", "err"] {
        let kept = numbers(&lines, stream);
        let first = kept[0];
        assert!(first > 0, "{stream}: old lines should have been rotated away");
        assert_eq!(kept, (first..LINES).collect::<Vec<_>>(), "{stream}");
    }
    let tail = unit.log_tail(3);
    assert_eq!(tail.len(), 3);
    assert!(tail.iter().any(|l| l.ends_with(" done")), "{tail:?}");
    unit.stop().await;
}

/// Kills the process groups it holds when dropped.
struct Groups(Vec<u32>);

impl Drop for Groups {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = supervisor::signal_group(pid, Signal::SIGKILL);
        }
    }
}

/// Postgres nodes log to their file directly because they must outlive a
/// daemon killed -9; a piped service cannot, and is restarted by the next
/// daemon instead.
#[test]
fn a_unit_logging_to_its_file_outlives_the_supervisor_and_a_piped_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let script = "while true; do echo tick; sleep 0.05; done";
    let mut groups = Groups(Vec::new());
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    // Dropping a handle stops its unit: keep them past the runtime.
    let (pids, _handles) = runtime.block_on(async {
        let mut pids = Vec::new();
        let mut handles = Vec::new();
        for (name, mode) in [("direct", LogMode::File), ("piped", LogMode::default())] {
            let mut spec = sh(name, script, dir.path());
            spec.log_mode = mode;
            let unit = supervisor::spawn_unit(spec, tx.clone());
            unit.start().await;
            let log = unit.log_path().to_path_buf();
            poll("ticks", Duration::from_secs(10), || {
                read(&log).contains("tick").then_some(())
            })
            .await;
            assert_eq!(unit.status().state, UnitState::Ready);
            pids.push(unit.status().pid.unwrap());
            groups.0.push(unit.status().pid.unwrap());
            handles.push(unit);
        }
        (pids, handles)
    });
    let (direct, piped) = (pids[0], pids[1]);
    // The "daemon" dies: every task gone, nothing stopped.
    drop(runtime);
    testkit::poll(
        "the piped unit to die of its broken pipe",
        Duration::from_secs(10),
        || (!supervisor::alive(piped)).then_some(()),
    );
    let file_log = dir.path().join("direct.log");
    let size = std::fs::metadata(&file_log).unwrap().len();

    testkit::poll("the direct unit to keep logging", Duration::from_secs(10), || {
        (std::fs::metadata(&file_log).unwrap().len() > size).then_some(())
    });
    assert!(supervisor::alive(direct));
}

/// A service that printed its reason and exited at once was reported
/// "failed" before its log had the reason (the writer thread had not
/// written it yet), so `up`'s message quoted an empty log under load.
#[tokio::test]
async fn a_units_last_lines_are_in_its_log_when_its_exit_is_reported() {
    let mut h = Harness::new();
    for round in 0..20 {
        let name = format!("brief{round}");
        let mut spec = sh(&name, "seq 1 20000; echo cannot read config.yml; exit 3", h.dir());
        spec.policy.mode = supervisor::RestartMode::No;
        spec.log_mode = LogMode::Rotated {
            max_bytes: MAX_BYTES,
            keep: 2,
        };
        let unit = h.spawn(spec);
        unit.start().await;
        // The moment the exit shows in the status, the reason must be readable.
        poll("the exit", Duration::from_secs(30), || {
            (unit.status().state == UnitState::Failed).then_some(())
        })
        .await;
        let tail = unit.log_tail(5);
        assert!(
            tail.iter().any(|l| l.contains("cannot read config.yml")),
            "round {round}: {tail:?}"
        );
    }
}

/// The line tap sees every line of both streams, as the log has them, and
/// none of the supervisor's own notes.
#[tokio::test]
async fn the_line_tap_sees_every_line_the_unit_prints() {
    let mut h = Harness::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut spec = sh("tapped", &chatty(), h.dir());
    let sink = seen.clone();
    spec.line_tap = Some(std::sync::Arc::new(move |line: &[u8]| {
        sink.lock()
            .unwrap()
            .push(String::from_utf8_lossy(line).into_owned());
    }));
    let unit = h.spawn(spec);
    unit.start().await;
    let log = unit.log_path().to_path_buf();
    let lines = poll("every line in the log", Duration::from_secs(30), || {
        all_lines(&log)
    })
    .await;
    let tapped: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.trim_end().to_string())
        .collect();
    let every: Vec<usize> = (0..LINES).collect();
    let tapped_lines: Vec<String> = tapped
        .iter()
        .filter(|l| !l.starts_with("prodhome: "))
        .cloned()
        .collect();
    assert_eq!(tapped_lines.len(), tapped.len(), "no supervisor note is tapped");
    assert_eq!(numbers(&tapped, "out"), every, "stdout, each once");
    assert_eq!(numbers(&tapped, "err"), every, "stderr, each once");
    let from_log: Vec<&String> = lines.iter().filter(|l| !l.starts_with("prodhome: ")).collect();
    assert_eq!(tapped.len(), from_log.len(), "the tap saw what the log has");
    unit.stop().await;
}
