//! `prodhome data fill` stopped with Ctrl-C and run again, on a lab unlike
//! the seed (a journal of ledger entries, one mirror, a `tables = [...]`
//! replication): the committed batches stay and it says how far it got, the
//! keys dropped for the load are built again at once, the same command
//! resumes with nothing twice, the mirror converges and `--json` says so;
//! progress is plain lines off a terminal and a redrawn bar with rows/s and
//! an ETA on one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::{TestLab, assert_success, poll};

use crate::{BIN, text};

const LAB: &str = r#"name = "journalfill"
[postgres.books_db]
[postgres.mirror]
[replication.journal]
publisher = "books_db"
subscribers = ["mirror"]
schema = "schema.sql"
tables = ["entries"]
"#;

const SCHEMA: &str = "CREATE TABLE entries (
  entry_no bigint PRIMARY KEY,
  account char(8) NOT NULL,
  amount numeric(14,2) NOT NULL CHECK (amount > -1000000 AND amount < 1000000),
  booked date NOT NULL,
  memo text);
CREATE INDEX entries_booked ON entries (booked);";

const ROWS: u64 = 600_000;

/// Kills the fill if the test fails before it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn count(lab: &TestLab, node: &str) -> u64 {
    lab.sql(node, "SELECT count(*) FROM entries").parse().unwrap()
}

fn indexes(lab: &TestLab) -> String {
    lab.sql(
        "books_db",
        "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'entries'",
    )
}

#[test]
fn an_interrupted_data_fill_keeps_its_batches_says_how_far_and_resumes() {
    let lab = TestLab::new(BIN).lab(LAB).file("schema.sql", SCHEMA);
    lab.up();
    let keys = indexes(&lab);
    let rows = ROWS.to_string();
    let args = [
        "data",
        "fill",
        "--rows",
        &rows,
        "--streams",
        "1",
        "--seed",
        "4",
        "--node",
        "books_db",
    ];
    let child = lab
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start data fill");
    let mut fill = Running(child);
    poll("a committed batch", Duration::from_secs(120), || {
        (count(&lab, "books_db") > 0).then_some(())
    });
    kill(Pid::from_raw(fill.0.id() as i32), Signal::SIGINT).unwrap();
    poll("data fill to stop", Duration::from_secs(120), || {
        fill.0.try_wait().unwrap()
    });
    let out = std::mem::replace(&mut fill.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(130), "{said}");
    let kept = count(&lab, "books_db");
    assert!(kept < ROWS, "the fill ended before it was stopped:\n{said}");
    for expected in [
        "stopped; committed so far".to_string(),
        format!("public.entries: {kept} of {ROWS} rows"),
        "built again the keys dropped for the load: public.entries: entries_pkey, public.entries: entries_booked".into(),
    ] {
        assert!(said.contains(&expected), "lacks {expected:?}:\n{said}");
    }
    assert_eq!(indexes(&lab), keys, "the keys did not come back as they were");

    let mut again: Vec<&str> = args.to_vec();
    again.extend(["--json", "--wait", "--timeout", "120s"]);
    let out = lab.run(&again);
    assert_success(&out, "data fill, again");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let table = &summary["tables"][0];
    assert_eq!(table["table"], "public.entries");
    assert_eq!(table["resumed_from"], kept, "{summary}");
    assert_eq!(table["added"], ROWS - kept, "{summary}");
    assert_eq!(table["format"], "binary", "{summary}");
    assert_eq!(summary["verified"], true, "{summary}");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains(&format!("data fill: {ROWS}/{ROWS} rows"))
            && progress.contains("rows/s")
            && progress.contains("ETA 0s"),
        "no plain progress line off a terminal:\n{progress}"
    );
    assert!(
        !progress.contains('\r'),
        "a redrawn line off a terminal:\n{progress}"
    );
    assert_eq!(count(&lab, "books_db"), ROWS);
    assert_eq!(count(&lab, "mirror"), ROWS);
    assert_eq!(indexes(&lab), keys);

    // On a terminal: a bar redrawn in place, with rows/s and an ETA.
    let base = lab.command();
    let mut tty = Command::new("script");
    tty.current_dir(base.get_current_dir().unwrap());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => tty.env(k, v),
            None => tty.env_remove(k),
        };
    }
    let out = tty
        .args([
            "-qec",
            &format!("{BIN} data fill --rows 5000 --seed 5"),
            "/dev/null",
        ])
        .output()
        .expect("run script(1)");
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains('\r')
            && shown.contains("[####################] 100% 5000/5000 rows")
            && shown.contains("ETA 0s"),
        "no progress bar on a terminal:\n{shown}"
    );
}
