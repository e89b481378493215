//! A run: check the target, connect every client, then each client plays
//! its schedule — wait for the slot (open loop) or go at once (closed
//! loop), make sure it is connected, run one transaction, count it, record
//! its writes in the ledger — until the deadline, the transaction limit or
//! the stop signal. Transactions in flight at the end get a grace period to
//! finish, so what the summary reports is what the server committed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use model::PointSender;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::client::{Conn, Halt, Session, TxError, connect};
use crate::error::{Error, ErrorKind, describe};
use crate::ledger::Ledger;
use crate::options::{HumOptions, Target, Workload};
use crate::points::Reporter;
use crate::schedule::{client_schedule, workload_rng};
use crate::stats::{Stats, Summary};
use crate::workload::books::Books;
use crate::workload::script::ScriptWork;
use crate::workload::tpcb::Tpcb;
use crate::workload::{Tx, Work, open_main};

/// Open loop: a transaction already this late when its client gets to it
/// (the server was down that long) is skipped and counted, instead of
/// bursting a backlog at a server that just came back.
const LATE_LIMIT: Duration = Duration::from_secs(10);

/// How long transactions in flight at the end may take to finish.
const GRACE: Duration = Duration::from_secs(3);

/// How often the ledger is written and fsync'd.
const LEDGER_BATCH: Duration = Duration::from_millis(100);

pub(crate) fn connect_error(target: &Target, e: tokio_postgres::Error) -> Error {
    Error::with(
        ErrorKind::Connect,
        format!(
            "could not connect to {} ({}:{}, user {}, database {}): {}; is it running?",
            target.name,
            target.host,
            target.port,
            target.user,
            target.dbname,
            describe(&e)
        ),
        e,
    )
}

pub(crate) async fn run(
    opts: HumOptions,
    points: Option<PointSender>,
    stop: watch::Receiver<bool>,
) -> Result<Summary, Error> {
    opts.check()?;
    let script = match &opts.workload {
        Workload::Script { path, text } => Some(
            crate::script::parse(text)
                .map_err(|e| Error::with(ErrorKind::Script, format!("{}:{e}", path.display()), e))?,
        ),
        _ => None,
    };
    let setup = connect(&opts.target.config())
        .await
        .map_err(|e| connect_error(&opts.target, e))?;
    let node = opts.target.name.clone();
    match (&opts.workload, script) {
        (Workload::Tpcb { .. }, _) => {
            let work = Tpcb::setup(&setup, &node).await?;
            drive(work, setup, opts, points, stop).await
        }
        (Workload::Books, _) => {
            let work = Books::setup(&setup, &node, !opts.read_targets.is_empty()).await?;
            drive(work, setup, opts, points, stop).await
        }
        (Workload::Script { path, .. }, Some(script)) => {
            let work = ScriptWork::setup(script, path, &setup).await?;
            drive(work, setup, opts, points, stop).await
        }
        (Workload::Script { .. }, None) => unreachable!("parsed above"),
    }
}

/// What every client of a run shares.
struct Shared<W: Work> {
    work: W,
    opts: HumOptions,
    stats: Arc<Stats>,
    ledger: Option<Arc<Ledger>>,
    /// Slots claimed so far, against `opts.transactions`.
    claimed: AtomicU64,
    start: Instant,
}

async fn drive<W: Work>(
    work: W,
    setup: tokio_postgres::Client,
    opts: HumOptions,
    points: Option<PointSender>,
    stop: watch::Receiver<bool>,
) -> Result<Summary, Error> {
    let config = opts.target.config();
    prepare(&work, &setup, &opts.target).await?;
    drop(setup);
    // Every client connects before the clock starts, as pgbench's do.
    let sessions = try_join_all((0..opts.clients).map(|_| open_main(&work, &config)))
        .await
        .map_err(|e| connect_error(&opts.target, e))?;
    let ledger = open_ledger(&opts)?;
    let start = Instant::now();
    let stats = Arc::new(Stats::new(opts.clients, start));
    let halt = Halt::new(stop, opts.duration.map(|d| start + d));
    let dropped = Arc::new(AtomicU64::new(0));
    let reporter = tokio::spawn(
        Reporter {
            stats: stats.clone(),
            points,
            progress: opts.progress,
            node: opts.target.name.clone(),
            workload: opts.workload.name(),
            dropped: dropped.clone(),
            start,
        }
        .run(),
    );
    let (flusher_done, flusher) = match &ledger {
        Some(l) => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(tokio::spawn(flush_ledger(l.clone(), rx))))
        }
        None => (None, None),
    };
    let reads: Vec<tokio_postgres::Config> = opts.read_targets.iter().map(Target::config).collect();
    let shared = Arc::new(Shared {
        work,
        opts,
        stats: stats.clone(),
        ledger: ledger.clone(),
        claimed: AtomicU64::new(0),
        start,
    });
    run_clients(&shared, sessions, &config, &reads, &halt).await;
    let elapsed = start.elapsed();
    reporter.abort();
    if let (Some(done), Some(flusher)) = (flusher_done, flusher) {
        let _ = done.send(());
        let _ = flusher.await;
    }
    let ledger_error = final_flush(ledger.as_ref()).await;
    let opts = &shared.opts;
    Ok(Summary {
        node: opts.target.name.clone(),
        workload: opts.workload.name(),
        clients: opts.clients,
        rate: match opts.rate {
            crate::Rate::Max => None,
            crate::Rate::PerSecond(r) => Some(r),
        },
        seed: opts.seed,
        ledger_entries: ledger.as_ref().map_or(0, |l| l.entries()),
        ledger_error,
        points_dropped: dropped.load(Ordering::Relaxed),
        ..stats.summary(elapsed)
    })
}

/// The statements must prepare; say so now rather than retry forever.
async fn prepare<W: Work>(work: &W, setup: &tokio_postgres::Client, target: &Target) -> Result<(), Error> {
    // The prepared statements are the clients' own; this is only a trial.
    work.prepare_main(setup).await.map(drop).map_err(|e| {
        Error::with(
            ErrorKind::Setup,
            format!(
                "{}: the server rejects the workload's statements: {}",
                target.name,
                describe(&e)
            ),
            e,
        )
    })
}

fn open_ledger(opts: &HumOptions) -> Result<Option<Arc<Ledger>>, Error> {
    let Some(path) = &opts.ledger else {
        return Ok(None);
    };
    let ledger = Ledger::open(path).map_err(|e| {
        Error::with(
            ErrorKind::Ledger,
            format!("cannot open the ledger {}: {e}", path.display()),
            e,
        )
    })?;
    Ok(Some(Arc::new(ledger)))
}

/// Runs one client per session to the end; a client's panic is the run's.
async fn run_clients<W: Work>(
    shared: &Arc<Shared<W>>,
    sessions: Vec<Session<W::Main>>,
    config: &tokio_postgres::Config,
    reads: &[tokio_postgres::Config],
    halt: &Halt,
) {
    let mut clients = JoinSet::new();
    for (i, session) in sessions.into_iter().enumerate() {
        let read = (shared.work.uses_reads() && !reads.is_empty())
            .then(|| Conn::new(reads[i % reads.len()].clone(), None));
        let main = Conn::new(config.clone(), Some(session));
        clients.spawn(client(shared.clone(), i as u32, main, read, halt.clone()));
    }
    while let Some(done) = clients.join_next().await {
        if let Err(e) = done
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// The ledger's last write, or what stopped it.
async fn final_flush(ledger: Option<&Arc<Ledger>>) -> Option<String> {
    let l = ledger?.clone();
    match tokio::task::spawn_blocking(move || l.flush()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!(
            "writing {}: {e}",
            ledger.map_or_else(String::new, |l| l.path().display().to_string())
        )),
        Err(e) => Some(format!("writing the ledger: {e}")),
    }
}

/// Writes and fsyncs the ledger every [`LEDGER_BATCH`] until told to stop.
async fn flush_ledger(ledger: Arc<Ledger>, mut done: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(LEDGER_BATCH);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut done => return,
        }
        let l = ledger.clone();
        // A failed batch stays pending and is retried; the final flush
        // reports what could not be written.
        let _ = tokio::task::spawn_blocking(move || l.flush()).await;
    }
}

/// One client: its schedule, its connection(s), one transaction at a time.
async fn client<W: Work>(
    sh: Arc<Shared<W>>,
    id: u32,
    mut main: Conn<W::Main>,
    mut read: Option<Conn<W::Read>>,
    mut halt: Halt,
) {
    let opts = &sh.opts;
    let mut schedule = client_schedule(opts.seed, id, opts.clients, opts.rate, &opts.stochastic);
    let mut rng = workload_rng(opts.seed, id);
    let mut state = sh.work.client_state(id);
    let mut writes = Vec::new();
    let mut longs = JoinSet::new();
    let index = id as usize;
    loop {
        if halt.is_due() {
            break;
        }
        if let Some(limit) = opts.transactions
            && sh.claimed.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        while longs.try_join_next().is_some() {}
        let slot = schedule.next().expect("schedules never end");
        let mut due = Instant::now();
        if let Some(at) = slot.at {
            due = sh.start + at;
            if halt.deadline().is_some_and(|d| due >= d) || !halt.sleep_until(due).await {
                break;
            }
            if due.elapsed() > LATE_LIMIT {
                sh.stats.skipped();
                continue;
            }
        }
        if let Some(long) = &slot.long {
            // Beside the schedule, on a connection of its own, as another
            // application would: the lock waits it causes are the point.
            if let Some(lock) = sh.work.hot_row_lock(long.hot) {
                longs.spawn(long_transaction(sh.clone(), lock, long.hold));
            }
            continue;
        }
        if !connected(&sh, &mut main, &mut halt).await {
            break;
        }
        if slot.at.is_none() {
            due = Instant::now(); // closed loop: from the real start
        }
        let Some(session) = main.session() else { continue };
        writes.clear();
        sh.stats.begin(index, due);
        let tx = Tx {
            main: session,
            read: read.as_mut(),
            rng: &mut rng,
            state: &mut state,
            writes: &mut writes,
            stats: &sh.stats,
        };
        let outcome = finish(sh.work.execute(tx), &mut halt).await;
        sh.stats.end(index);
        if !settle(&sh, outcome, &writes, due, &mut main).await {
            break;
        }
        if slot.disconnect_after {
            main.drop_session();
            sh.stats.disconnected();
        }
    }
    // Long transactions still holding their locks end with the run.
    while longs.try_join_next().is_some() {}
    for _ in 0..longs.len() {
        sh.stats.abandoned();
    }
}

/// One long transaction: lock a hot row, hold it `hold`, commit.
async fn long_transaction<W: Work>(sh: Arc<Shared<W>>, lock: String, hold: Duration) {
    let client = match connect(&sh.opts.target.config()).await {
        Ok(client) => client,
        Err(e) => {
            sh.stats.connect_failed();
            sh.stats.failed(e.code().map_or("08001", |c| c.code()));
            return;
        }
    };
    let sql = format!("begin; {lock}; select pg_sleep({}); commit", hold.as_secs_f64());
    match client.batch_execute(&sql).await {
        Ok(()) => sh.stats.committed("long", hold, true),
        Err(e) => sh.stats.failed(&TxError::from_pg(&e, &client).code),
    }
}

/// Counts one transaction's outcome (and records its writes); `false`
/// when the run ended before it did.
async fn settle<W: Work>(
    sh: &Shared<W>,
    outcome: Option<Result<&'static str, TxError>>,
    writes: &[(&'static str, i64)],
    due: Instant,
    main: &mut Conn<W::Main>,
) -> bool {
    match outcome {
        None => {
            sh.stats.abandoned();
            return false;
        }
        Some(Ok(kind)) => {
            sh.stats.committed(kind, due.elapsed(), false);
            if let Some(ledger) = &sh.ledger {
                ledger.record(writes);
            }
        }
        Some(Err(e)) => {
            sh.stats.failed(&e.code);
            if e.broken || !rolled_back(main).await {
                main.lost();
            }
        }
    }
    true
}

/// Makes sure `conn` has a session, reconnecting with backoff; false when
/// the run halts first.
async fn connected<W: Work>(sh: &Shared<W>, conn: &mut Conn<W::Main>, halt: &mut Halt) -> bool {
    while !conn.up() {
        if !halt.sleep_until(conn.next_attempt()).await {
            return false;
        }
        let attempt = tokio::select! {
            r = open_main(&sh.work, conn.config()) => r,
            () = halt.wait() => return false,
        };
        conn.record(attempt, &sh.stats);
    }
    true
}

/// After a failed transaction: leave no transaction open on the session
/// (a script may have failed between BEGIN and END).
async fn rolled_back<S>(conn: &Conn<S>) -> bool {
    let Some(session) = conn.session() else {
        return false;
    };
    matches!(
        tokio::time::timeout(GRACE, session.client.batch_execute("ROLLBACK")).await,
        Ok(Ok(()))
    )
}

/// Runs `work` to the end; when the run halts meanwhile, waits at most
/// [`GRACE`] more and gives up (`None`).
async fn finish<F: Future>(work: F, halt: &mut Halt) -> Option<F::Output> {
    tokio::pin!(work);
    tokio::select! {
        biased;
        out = &mut work => Some(out),
        () = halt.wait() => tokio::time::timeout(GRACE, work).await.ok(),
    }
}
