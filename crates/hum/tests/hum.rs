//! hum against real Postgres servers (testkit::PgNode): every workload
//! commits what it reports, open-loop latency shows a stalled server, runs
//! survive a crashed server, seeds replay, the ledger matches the table.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hum::{HumOptions, Rate, Stochastic, Summary, Target, Workload};
use model::{FieldValue, Point};
use testkit::PgNode;
use tokio::sync::{mpsc, watch};

const PGBENCH: &str = "/usr/lib/postgresql/15/bin/pgbench";

fn target(node: &PgNode) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: node.port(),
        user: "postgres".into(),
        password: None,
        dbname: "postgres".into(),
        name: "pg".into(),
    }
}

fn options(node: &PgNode, workload: Workload) -> HumOptions {
    let mut opts = HumOptions::new(target(node), workload);
    opts.seed = 1;
    opts
}

/// Runs to the end with no points and no stop signal.
async fn run(opts: HumOptions) -> Summary {
    let (_stop, rx) = watch::channel(false);
    hum::run(opts, None, rx).await.expect("hum run")
}

fn int(node: &PgNode, sql: &str) -> i64 {
    let out = node.sql(sql);
    out.parse()
        .unwrap_or_else(|_| panic!("{sql}: not an integer: {out:?}"))
}

/// Waits for a point that satisfies `pred`, at most `limit`.
/// The test's end of hum's point handover: the store's place, a bounded
/// channel read by the test (a point that does not fit is dropped, as the
/// store drops it).
struct Points(mpsc::Sender<Point>);

impl model::PointSink for Points {
    fn try_send(&self, points: Vec<Point>) -> Result<(), model::Full> {
        let n = points.len();
        for point in points {
            self.0.try_send(point).map_err(|_| model::Full { dropped: n })?;
        }
        Ok(())
    }
}

fn points(capacity: usize) -> (model::PointSender, mpsc::Receiver<Point>) {
    let (tx, rx) = mpsc::channel(capacity);
    (model::PointSender::new(Points(tx)), rx)
}

async fn point_where(
    rx: &mut mpsc::Receiver<Point>,
    what: &str,
    limit: Duration,
    pred: impl Fn(&Point) -> bool,
) -> Point {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(p)) if pred(&p) => return p,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the run ended before {what}"),
            Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
        }
    }
}

fn field_i64(p: &Point, name: &str) -> i64 {
    match p.fields[name] {
        FieldValue::I64(v) => v,
        ref other => panic!("{name} is {other:?}, not I64"),
    }
}

fn field_f64(p: &Point, name: &str) -> f64 {
    match p.fields[name] {
        FieldValue::F64(v) => v,
        ref other => panic!("{name} is {other:?}, not F64"),
    }
}

/// The whole server stopped with SIGSTOP until dropped. Every child of the
/// postmaster runs in a session of its own (postgres calls setsid()), so
/// signalling the postmaster's process group (PgNode::pause) would stop
/// only the postmaster and leave open sessions running: signal each.
struct Paused {
    pids: Vec<String>,
}

impl Paused {
    fn server(node: &PgNode) -> Paused {
        let postmaster = node.pid();
        let mut pids = vec![postmaster.to_string()];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(postmaster.to_string().as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let paused = Paused { pids };
        assert!(paused.signal("-STOP"), "kill -STOP {:?}", paused.pids);
        paused
    }

    fn signal(&self, sig: &str) -> bool {
        let status = Command::new("kill").arg(sig).args(&self.pids).status();
        status.is_ok_and(|s| s.success())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // Never panics here: a process may have exited meanwhile.
        self.signal("-CONT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpcb_commits_what_it_reports_on_tables_pgbench_shares() {
    let node = PgNode::start();
    hum::init(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    assert_eq!(int(&node, "select count(*) from pgbench_accounts"), 100_000);
    assert_eq!(int(&node, "select count(*) from pgbench_tellers"), 10);

    let mut opts = options(&node, Workload::Tpcb { scale: 1 });
    opts.transactions = Some(300);
    let s = run(opts).await;
    assert_eq!((s.transactions, s.errors), (300, 0), "{s}");
    assert_eq!(s.kinds["tpcb"], 300);
    assert_eq!(int(&node, "select count(*) from pgbench_history"), 300);
    // Every delta landed in all three balances, once.
    let sums = node.sql(
        "select (select sum(delta) from pgbench_history), (select sum(abalance) from pgbench_accounts), \
         (select sum(tbalance) from pgbench_tellers), (select sum(bbalance) from pgbench_branches)",
    );
    let sums: Vec<&str> = sums.split('|').collect();
    assert!(sums.iter().all(|v| *v == sums[0]), "{sums:?}");
    assert!(
        s.latency_ms.p50 > 0.0 && s.latency_ms.max >= s.latency_ms.p99,
        "{s:?}"
    );

    // pgbench runs on hum's tables...
    let out = Command::new(PGBENCH)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &node.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-n", "-M", "prepared", "-c", "2", "-t", "20", "postgres"])
        .output()
        .expect("run pgbench");
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(int(&node, "select count(*) from pgbench_history"), 340);

    // ...and hum on pgbench's; init keeps complete tables of the right scale.
    let out = Command::new(PGBENCH)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &node.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-i", "-q", "-s", "2", "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hum::init(&target(&node), &Workload::Tpcb { scale: 2 })
        .await
        .unwrap();
    let mut opts = options(&node, Workload::Tpcb { scale: 1 });
    opts.transactions = Some(50);
    let s = run(opts).await;
    assert_eq!((s.transactions, s.errors), (50, 0), "{s}");
    assert_eq!(int(&node, "select count(*) from pgbench_history"), 50);
    // The run uses the tables' scale: accounts up to 200,000.
    let max_aid = int(&node, "select max(aid) from pgbench_history");
    assert!((100_001..=200_000).contains(&max_aid), "{max_aid}");

    // A fresh init starts over like pgbench -i.
    hum::init_fresh(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    assert_eq!(int(&node, "select count(*) from pgbench_history"), 0);
    assert_eq!(int(&node, "select count(*) from pgbench_branches"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_commits_what_it_reports_and_the_ledger_matches_the_table() {
    let (node, replica) = (PgNode::start(), PgNode::start());
    hum::init(&target(&node), &Workload::Books).await.unwrap();
    hum::init(&target(&replica), &Workload::Books).await.unwrap();
    replica.sql("insert into books (id, title) select g, 'copy' from generate_series(1, 50) g");
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");

    let mut opts = options(&node, Workload::Books);
    opts.clients = 3;
    opts.transactions = Some(600);
    opts.ledger = Some(ledger.clone());
    let mut read = target(&replica);
    read.name = "replica".into();
    opts.read_targets = vec![read];
    let s = run(opts).await;
    assert_eq!((s.transactions, s.errors), (600, 0), "{s}");
    let inserts = s.kinds["insert"];
    assert!(
        inserts > 60 && s.kinds["update"] > 100 && s.kinds["read"] > 100,
        "{s:?}"
    );
    assert_eq!(int(&node, "select count(*) from books") as u64, inserts);

    let entries = hum::ledger::read(&ledger).unwrap();
    assert_eq!(entries.len() as u64, s.ledger_entries);
    assert!(entries.iter().all(|e| e.table == "books"));
    let in_ledger: BTreeSet<i64> = entries.iter().map(|e| e.key.parse().unwrap()).collect();
    let in_table: BTreeSet<i64> = node
        .sql("select id from books order by id")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(
        in_ledger, in_table,
        "every acknowledged write is in the table and vice versa"
    );
    assert!(s.ledger_entries > inserts, "updates are recorded too: {s:?}");

    // The reads went to the replica (its backends report on exit).
    let port = replica.port();
    testkit::poll("reads on the replica", Duration::from_secs(20), || {
        let n = int(
            &replica,
            "select coalesce(sum(idx_scan), 0) from pg_stat_user_tables where relname = 'books'",
        );
        (n > 50).then_some(port)
    });
    assert_eq!(
        int(&replica, "select count(*) from books"),
        50,
        "nothing written to the read target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_runs_its_statements_and_bad_scripts_are_located() {
    let node = PgNode::start();
    hum::init(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    let text = "\\set aid random(1, 100000 * :scale)\n\
                \\set delta random_gaussian(-100, 100, 3) * 2\n\
                \\set nap random(0, 2)\n\
                BEGIN;\n\
                UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n\
                \\sleep :nap ms\n\
                INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)\n  VALUES (1, 1, :aid, :delta, now());\n\
                END;\n";
    let script = |text: &str| Workload::Script {
        path: PathBuf::from("mix.sql"),
        text: text.to_string(),
    };
    let mut opts = options(&node, script(text));
    opts.clients = 2;
    opts.transactions = Some(40);
    let s = run(opts).await;
    assert_eq!((s.transactions, s.errors, s.kinds["script"]), (40, 0, 40), "{s}");
    assert_eq!(s.workload, "mix.sql");
    assert_eq!(int(&node, "select count(*) from pgbench_history"), 40);
    assert_eq!(
        node.sql("select sum(delta) = (select sum(abalance) from pgbench_accounts) from pgbench_history"),
        "t"
    );

    let (_stop, rx) = watch::channel(false);
    let e = hum::run(
        options(&node, script("select 1;\n\\set x random(1 10)\n")),
        None,
        rx.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), hum::ErrorKind::Script);
    assert!(e.to_string().starts_with("mix.sql:2:17: "), "{e}");
    let e = hum::run(
        options(&node, script("select 1;\n  select * from nowhere;\n")),
        None,
        rx,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), hum::ErrorKind::Script);
    assert!(
        e.to_string()
            .starts_with("mix.sql:2:3: the server rejects this statement"),
        "{e}"
    );
    assert!(e.to_string().contains("42P01"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_shows_a_paused_server() {
    let node = PgNode::start();
    hum::init(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    let mut opts = options(&node, Workload::Tpcb { scale: 1 });
    opts.clients = 2;
    opts.rate = Rate::PerSecond(50.0);
    opts.duration = Some(Duration::from_secs(8));
    let (points_tx, mut points) = points(100);
    let (_stop, stop_rx) = watch::channel(false);
    let running = tokio::spawn(hum::run(opts, Some(points_tx), stop_rx));

    let first = point_where(
        &mut points,
        "a point with transactions",
        Duration::from_secs(20),
        |p| field_i64(p, "transactions") > 0,
    )
    .await;
    assert_eq!(first.measurement, "hum");
    assert_eq!(
        (first.tags["node"].as_str(), first.tags["workload"].as_str()),
        ("pg", "tpcb")
    );
    assert!(field_f64(&first, "tps") > 0.0);
    assert_eq!(field_i64(&first, "errors"), 0);

    let paused = Paused::server(&node);
    // The run itself reports the stall: in-flight transactions age.
    let stalled = point_where(
        &mut points,
        "in-flight latency of 2 s",
        Duration::from_secs(20),
        |p| field_f64(p, "latency_max_ms") >= 2000.0,
    )
    .await;
    drop(paused);
    assert!(field_f64(&stalled, "tps") < 50.0);

    let s = running.await.unwrap().unwrap();
    assert!(s.latency_ms.max >= 2000.0, "{s}");
    assert!(s.latency_ms.p99 >= 1500.0, "coordinated omission hidden: {s}");
    assert_eq!(s.errors, 0, "{s}");
    assert_eq!(s.rate, Some(50.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_the_server_being_killed_and_restarted() {
    let mut node = PgNode::start();
    hum::init(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    let mut opts = options(&node, Workload::Tpcb { scale: 1 });
    opts.clients = 2;
    opts.rate = Rate::PerSecond(100.0);
    let (points_tx, mut points) = points(100);
    let (stop, stop_rx) = watch::channel(false);
    let running = tokio::spawn(hum::run(opts, Some(points_tx), stop_rx));

    point_where(
        &mut points,
        "transactions before the crash",
        Duration::from_secs(20),
        |p| field_i64(p, "transactions") > 20,
    )
    .await;
    tokio::task::block_in_place(|| node.crash_and_restart());
    let restarted = point_where(&mut points, "a reconnect", Duration::from_secs(30), |p| {
        field_i64(p, "reconnects") >= 1
    })
    .await;
    let after = field_i64(&restarted, "transactions");
    point_where(
        &mut points,
        "transactions after the restart",
        Duration::from_secs(30),
        |p| field_i64(p, "transactions") > after + 50,
    )
    .await;
    stop.send(true).unwrap();
    let s = running.await.unwrap().unwrap();
    assert!(s.reconnects >= 1, "{s}");
    assert!(s.transactions as i64 > after + 50, "{s}");
    // Every acknowledged commit survived the crash.
    let history = int(&node, "select count(*) from pgbench_history") as u64;
    assert!(history >= s.transactions, "{history} rows < {s}");
    assert!(
        history <= s.transactions + s.errors + s.abandoned,
        "{history} rows: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_runs_make_the_same_choices() {
    let node = PgNode::start();
    hum::init(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    let choices = |seed: u64| {
        let mut opts = options(&node, Workload::Tpcb { scale: 1 });
        opts.clients = 1;
        opts.seed = seed;
        opts.transactions = Some(40);
        async {
            let s = run(opts).await;
            assert_eq!(s.transactions, 40);
            let rows = node.sql("select aid, bid, tid, delta from pgbench_history order by mtime");
            node.sql("truncate pgbench_history");
            rows
        }
    };
    let (a, b, c) = (choices(42).await, choices(42).await, choices(43).await);
    assert_eq!(a.lines().count(), 40);
    assert_eq!(a, b, "same seed, same transactions");
    assert_ne!(a, c, "another seed, other transactions");

    let s = Stochastic {
        spikes: true,
        long_tx_share: 0.05,
        disconnect_share: 0.01,
    };
    let plan = |seed| -> Vec<hum::schedule::Slot> {
        hum::schedule::client_schedule(seed, 0, 4, Rate::PerSecond(200.0), &s)
            .take(1000)
            .collect()
    };
    assert_eq!(plan(42), plan(42));
    assert_ne!(plan(42), plan(43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_transactions_make_lock_waits_and_disconnects_come_back() {
    let node = PgNode::start();
    hum::init(&target(&node), &Workload::Tpcb { scale: 1 })
        .await
        .unwrap();
    let mut opts = options(&node, Workload::Tpcb { scale: 1 });
    opts.clients = 4;
    opts.rate = Rate::PerSecond(100.0);
    opts.stochastic = Stochastic {
        spikes: false,
        long_tx_share: 0.05,
        disconnect_share: 0.05,
    };
    opts.duration = Some(Duration::from_secs(6));
    let (_stop, stop_rx) = watch::channel(false);
    let running = tokio::spawn(hum::run(opts, None, stop_rx));
    // One branch at scale 1: a long transaction holding it blocks the rest.
    tokio::task::block_in_place(|| {
        testkit::poll("a lock wait", Duration::from_secs(30), || {
            (int(&node, "select count(*) from pg_locks where not granted") > 0).then_some(())
        })
    });
    let s = running.await.unwrap().unwrap();
    assert!(
        s.long_transactions > 0 && s.kinds["long"] == s.long_transactions,
        "{s}"
    );
    assert!(s.disconnects > 0, "{s}");
    assert_eq!(
        (s.reconnects, s.errors),
        (0, 0),
        "deliberate disconnects are not failures: {s}"
    );
}

/// The tables' columns and primary keys, as a node reports them.
fn shape(node: &PgNode, tables: &[&str]) -> String {
    let list = tables
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(",");
    node.sql(&format!(
        "select string_agg(format('%s.%s %s %s', c.table_name, c.column_name, c.data_type, c.is_nullable), ', ' \
                order by c.table_name, c.ordinal_position) \
           || ' | ' || (select string_agg(conrelid::regclass::text || ' ' || pg_get_constraintdef(oid), ', ' order by 1) \
                        from pg_constraint where contype = 'p' and conrelid::regclass::text in ({list})) \
         from information_schema.columns c where c.table_name in ({list})"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_sql_makes_the_tables_init_makes_without_rows() {
    let (publisher, subscriber) = (PgNode::start(), PgNode::start());
    for workload in [Workload::Tpcb { scale: 1 }, Workload::Books] {
        hum::init(&target(&publisher), &workload).await.unwrap();
        let ddl: Vec<String> = workload.schema_sql().into_iter().map(|(_, sql)| sql).collect();
        // Idempotent: twice is the same as once.
        for _ in 0..2 {
            subscriber.sql(&ddl.join(";\n"));
        }
        let tables = workload.tables();
        assert_eq!(workload.schema_sql().len(), tables.len());
        let want = shape(&publisher, tables);
        assert!(want.contains("PRIMARY KEY"), "{want}");
        assert!(tables.iter().all(|t| want.contains(&format!("{t}."))), "{want}");
        assert_eq!(want, shape(&subscriber, tables), "{}", workload.name());
        for table in tables {
            assert_eq!(int(&subscriber, &format!("select count(*) from {table}")), 0);
        }
    }
    // Whether an init drops and recreates: only tpcb, fresh or incomplete.
    let tpcb = Workload::Tpcb { scale: 1 };
    assert!(
        !hum::init_recreates(&target(&publisher), &tpcb, false)
            .await
            .unwrap()
    );
    assert!(
        hum::init_recreates(&target(&publisher), &tpcb, true)
            .await
            .unwrap()
    );
    assert!(
        hum::init_recreates(&target(&publisher), &Workload::Tpcb { scale: 2 }, false)
            .await
            .unwrap()
    );
    assert!(
        !hum::init_recreates(&target(&publisher), &Workload::Books, true)
            .await
            .unwrap()
    );
}
