//! The real `dispatcher` binary against a real Postgres server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::{PgNode, free_port, http_get, poll};

const LIMIT: Duration = Duration::from_secs(60);

/// One dispatcher process, killed on drop; its stdout and stderr go to files.
struct Dispatcher {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Dispatcher {
    fn start(database_url: &str) -> Dispatcher {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let out = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_dispatcher"))
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("BATCH", "7")
            .env("INTERVAL_MS", "20")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start dispatcher");
        Dispatcher { child, port, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// stdout then stderr.
    fn log(&self) -> String {
        let out = std::fs::read_to_string(self.path("stdout")).unwrap_or_default();
        let err = std::fs::read_to_string(self.path("stderr")).unwrap_or_default();
        format!("{out}{err}")
    }

    /// The sum of N over the `dispatched N pickups (ids A..B)` lines.
    fn dispatched(&self) -> u64 {
        let out = std::fs::read_to_string(self.path("stdout")).unwrap_or_default();
        out.lines()
            .filter_map(|line| {
                line.strip_prefix("dispatched ")?
                    .split(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("http://127.0.0.1:{}{path}", self.port))
    }

    fn wait_healthy(&self) {
        poll("/health to answer 200", LIMIT, || {
            (self.get("/health")? == (200, "ok".to_string())).then_some(())
        });
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn insert(node: &PgNode, n: u32) {
    node.sql(&format!(
        "insert into pickups (rider) select 'rider ' || g from generate_series(1, {n}) g"
    ));
}

fn wait_all_dispatched(node: &PgNode, total: u32) {
    poll("every pickup to be dispatched", LIMIT, || {
        let counts = node.sql("select count(*), count(dispatched_at) from pickups");
        (counts == format!("{total}|{total}")).then_some(())
    });
}

#[test]
fn two_dispatchers_dispatch_every_pickup_exactly_once() {
    let node = PgNode::start();
    let a = Dispatcher::start(&node.url());
    let b = Dispatcher::start(&node.url());
    a.wait_healthy();
    b.wait_healthy();
    assert_eq!(a.get("/live"), Some((200, "alive".to_string())));
    insert(&node, 150);
    wait_all_dispatched(&node, 150);
    // Each dispatcher logs what it marked: a pickup marked twice would make
    // the logged total exceed the rows.
    poll("the batch logs to add up", LIMIT, || {
        (a.dispatched() + b.dispatched() == 150).then_some(())
    });
    let workers =
        node.sql("select string_agg(distinct dispatched_by, ',' order by dispatched_by) from pickups");
    let expected = [a.child.id(), b.child.id()].map(|pid| format!("dispatcher-{pid}"));
    for worker in workers.split(',') {
        assert!(
            expected.contains(&worker.to_string()),
            "{worker} is not one of {expected:?}"
        );
    }
    // Either may have taken every batch; between them they logged them.
    let logs = a.log() + &b.log();
    assert!(logs.contains("(ids "), "{logs}");
}

#[test]
fn waits_for_the_database_without_logging_its_password() {
    let mut node = PgNode::start();
    node.kill_all();
    // Trust auth ignores the password, but the dispatcher must not repeat it.
    let url = format!(
        "postgresql://postgres:s3cretpw@127.0.0.1:{}/postgres",
        node.port()
    );
    let mut d = Dispatcher::start(&url);
    poll("two failed connects logged", LIMIT, || {
        (d.log().matches("build for retrying").count() >= 2).then_some(())
    });
    assert_eq!(
        d.get("/health").map(|(code, _)| code),
        Some(503),
        "not ready while the database is down"
    );
    assert!(d.running(), "the dispatcher gave up:\n{}", d.log());
    node.crash_and_restart();
    d.wait_healthy();
    insert(&node, 20);
    wait_all_dispatched(&node, 20);
    let log = d.log();
    assert!(log.contains(&format!("127.0.0.1:{}", node.port())), "{log}");
    assert!(!log.contains("s3cretpw"), "the password leaked:\n{log}");
    assert!(!log.contains("postgresql://"), "the URL leaked:\n{log}");
}

#[test]
fn keeps_dispatching_after_the_database_is_killed_and_restarted() {
    let mut node = PgNode::start();
    let mut d = Dispatcher::start(&node.url());
    d.wait_healthy();
    insert(&node, 30);
    wait_all_dispatched(&node, 30);
    node.crash_and_restart();
    insert(&node, 40);
    wait_all_dispatched(&node, 70);
    assert!(d.running(), "the dispatcher exited:\n{}", d.log());
    assert!(
        d.log().contains("build for retrying"),
        "the lost connection was not logged:\n{}",
        d.log()
    );
    d.wait_healthy();
}

#[test]
fn sigterm_finishes_the_batch_and_exits_zero() {
    let node = PgNode::start();
    let mut d = Dispatcher::start(&node.url());
    d.wait_healthy();
    insert(&node, 5);
    wait_all_dispatched(&node, 5);
    kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = poll("the dispatcher to exit", LIMIT, || {
        d.child.try_wait().expect("try_wait")
    });
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert!(d.log().contains("stop requested"), "{}", d.log());
}
