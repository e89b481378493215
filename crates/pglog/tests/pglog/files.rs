//! The follower on real files: rotation to a new file, a line written in
//! two parts, a truncated file, and history it must not read.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use pglog::Follower;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Dates `path`'s last write an hour back: a file the collector left.
fn left(path: &Path) {
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
}

fn poll(f: &mut Follower) -> Vec<String> {
    let mut lines = Vec::new();
    f.poll(u64::MAX, |l| lines.push(l.to_string())).unwrap();
    lines
}

#[test]
fn rotation_keeps_every_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("postgresql-20261201-100000.json");
    let second = dir.path().join("postgresql-20261201-110000.json");
    let mut f = Follower::new(dir.path(), ".json", SystemTime::UNIX_EPOCH);
    assert!(poll(&mut f).is_empty(), "no files yet");
    append(&first, "a1\na2\n");
    assert_eq!(poll(&mut f), ["a1", "a2"]);
    // The collector writes its last lines to the old file, then opens the
    // new one: both arrive before the follower looks again.
    append(&first, "a3\n");
    append(&second, "b1\n");
    append(&first.with_extension("log"), "not followed\n");
    left(&first);
    assert_eq!(poll(&mut f), ["a3", "b1"]);
    append(&second, "b2 half");
    assert!(poll(&mut f).is_empty(), "half a line waits");
    append(&second, " done\n");
    assert_eq!(poll(&mut f), ["b2 half done"]);
    assert_eq!(f.position().unwrap().0, second.as_path());
}

#[test]
fn a_truncated_file_is_read_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("postgresql-20261201-100000.json");
    append(&file, "one\ntwo\n");
    let mut f = Follower::new(dir.path(), ".json", SystemTime::UNIX_EPOCH);
    assert_eq!(poll(&mut f), ["one", "two"]);
    std::fs::write(&file, "x\n").unwrap();
    assert_eq!(poll(&mut f), ["x"]);
}

#[test]
fn files_last_written_before_the_start_are_history() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("postgresql-20261130-100000.json");
    append(&old, "old\n");
    left(&old);
    let mut f = Follower::new(dir.path(), ".json", SystemTime::now() - Duration::from_secs(60));
    assert!(poll(&mut f).is_empty());
    append(&dir.path().join("postgresql-20261201-100000.json"), "new\n");
    assert_eq!(poll(&mut f), ["new"]);
}

#[test]
fn a_budget_stops_early_and_the_rest_comes_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    append(&file, &text);
    let mut f = Follower::new(dir.path(), ".json", SystemTime::UNIX_EPOCH);
    let mut lines = Vec::new();
    let mut rounds = 0;
    while lines.len() < 1000 && rounds < 10_000 {
        f.poll(100, |l| lines.push(l.to_string())).unwrap();
        rounds += 1;
    }
    assert!(rounds > 10, "a 100-byte budget reads in many rounds ({rounds})");
    assert_eq!(lines.len(), 1000);
    assert_eq!(lines[999], "line 999");
}

/// A follower stopped anywhere and resumed from its checkpoint hands over
/// every line once: the rest of its file (a half-written line whole), then
/// the files that came after; a checkpointed file that is gone counts as
/// read.
#[test]
fn a_resumed_follower_goes_on_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("postgresql-20261201-100000.json");
    let second = dir.path().join("postgresql-20261201-110000.json");
    append(&first, "a1\na2\na3 ha");
    let mut f = Follower::new(dir.path(), ".json", SystemTime::UNIX_EPOCH);
    assert_eq!(poll(&mut f), ["a1", "a2"]);
    let at = f.checkpoint().unwrap();
    assert_eq!(at.offset, 6, "after a2's newline, not after the half line");
    drop(f);
    append(&first, "lf\na4\n");
    append(&second, "b1\n");
    left(&first);
    let mut resumed = Follower::resume(dir.path(), ".json", at.clone());
    assert_eq!(poll(&mut resumed), ["a3 half", "a4", "b1"]);
    let later = resumed.checkpoint().unwrap();
    assert_eq!(later.path, second);
    // Resumed twice from the same checkpoint: the same lines, no more.
    assert_eq!(
        poll(&mut Follower::resume(dir.path(), ".json", at.clone())).len(),
        3
    );
    // The first file removed: its checkpoint leads on to the next file.
    std::fs::remove_file(&first).unwrap();
    assert_eq!(poll(&mut Follower::resume(dir.path(), ".json", at)), ["b1"]);
    assert!(poll(&mut Follower::resume(dir.path(), ".json", later)).is_empty());
}

/// After a crash the dead server's collector may write its last lines to
/// the old file after the new server's opened the next one: the follower
/// stays on the old file until it is left alone, so those lines are read
/// whole and in place, not cut off.
#[test]
fn a_file_still_written_after_the_next_appeared_is_read_to_its_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("postgresql-20261201-100000.json");
    let new = dir.path().join("postgresql-20261201-100005.json");
    append(&old, "o1\n");
    let mut f = Follower::new(dir.path(), ".json", SystemTime::UNIX_EPOCH);
    assert_eq!(poll(&mut f), ["o1"]);
    append(&new, "n1\n");
    append(&old, "o2 from the dying coll");
    assert!(
        poll(&mut f).is_empty(),
        "half a line, and the old file is still being written"
    );
    append(&old, "ector\n");
    assert_eq!(poll(&mut f), ["o2 from the dying collector"]);
    left(&old);
    assert_eq!(poll(&mut f), ["n1"]);
    assert_eq!(f.position().unwrap().0, new.as_path());
}
