//! One node's sampling: its session, every collector's state, and what
//! happens when something fails (a `sample_errors` point, an event when a
//! collector starts failing, a fresh session next cycle).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use model::{Event, EventKind, FieldValue, Point};

use crate::collectors::{self, Ctx, activity, custom, database, locks, process, replication, statements};
use crate::failure::Failure;
use crate::options::{CustomQuery, NodeTarget, ReplicationTarget};
use crate::session::Session;

pub(crate) struct NodeSampler {
    pub(crate) target: NodeTarget,
    statement_timeout: Duration,
    deadline: Duration,
    custom: Vec<CustomQuery>,
    session: Option<Session>,
    locks: locks::State,
    activity: activity::State,
    database: database::State,
    replication: replication::State,
    process: process::State,
    statements: statements::State,
    /// The postmaster last found, used while the node cannot be reached.
    postmaster: Option<u32>,
    /// Collectors failing now: an event is sent when one joins the set.
    failing: BTreeSet<String>,
    events: Vec<Event>,
    /// Ticks skipped because a cycle overran, since start.
    pub(crate) skipped: u64,
}

/// What one cycle of one node produced.
pub(crate) struct Cycle {
    pub(crate) points: Vec<Point>,
    pub(crate) duration: Duration,
}

impl NodeSampler {
    pub(crate) fn new(
        target: NodeTarget,
        replications: &[ReplicationTarget],
        custom: &[CustomQuery],
        statement_timeout: Duration,
        deadline: Duration,
    ) -> NodeSampler {
        let custom = custom
            .iter()
            .filter(|q| q.nodes.is_empty() || q.nodes.contains(&target.name))
            .cloned()
            .collect();
        NodeSampler {
            replication: replication::State::new(&target, replications),
            postmaster: target.postmaster_pid,
            target,
            statement_timeout,
            deadline,
            custom,
            session: None,
            locks: Default::default(),
            activity: Default::default(),
            database: Default::default(),
            process: Default::default(),
            statements: Default::default(),
            failing: BTreeSet::new(),
            events: Vec::new(),
            skipped: 0,
        }
    }

    /// Events since the last call (a collector started failing).
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// One cycle: every collector, within the node's deadline. Never fails:
    /// what could not be collected becomes `sample_errors` points.
    pub(crate) async fn sample(&mut self, ts_ns: i64) -> Cycle {
        let started = Instant::now();
        let node = self.target.name.clone();
        let ctx = Ctx { node: &node, ts_ns };
        let mut points = Vec::new();
        let mut failures: Vec<(String, Failure)> = Vec::new();
        match tokio::time::timeout(self.deadline, self.sample_sql(ctx, &mut points, &mut failures)).await {
            Ok(()) => {}
            Err(_) => {
                // The session may be stuck mid-query (a paused server):
                // start afresh next cycle.
                self.session = None;
                failures.push((
                    "cycle".into(),
                    Failure::new(format!(
                        "sampling {node} took longer than {:?}: the node is paused, overloaded or unreachable",
                        self.deadline
                    )),
                ));
            }
        }
        if self.session.as_ref().is_some_and(|s| !s.is_open()) {
            self.session = None;
        }

        if self.target.local {
            self.collect_process(ctx, &mut points, &mut failures);
        }

        let now_failing: BTreeSet<String> = failures.iter().map(|(c, _)| c.clone()).collect();
        for (collector, failure) in &failures {
            points.push(
                ctx.point("sample_errors")
                    .tag("collector", collector.clone())
                    .int("count", 1)
                    .field("message", FieldValue::Str(failure.message.clone())),
            );
            if !self.failing.contains(collector) {
                self.events
                    .push(failure_event(&node, collector, &failure.message));
            }
        }
        self.failing = now_failing;
        let duration = started.elapsed();
        points.push(
            ctx.point("sampler")
                .float("duration_s", duration.as_secs_f64())
                .int("errors", failures.len() as i64)
                .int("skipped_ticks", self.skipped as i64),
        );
        Cycle { points, duration }
    }

    /// The process collector: the postmaster's tree in `/proc`, found from
    /// the session's backend (or the pid given, while the node cannot be
    /// queried).
    fn collect_process(
        &mut self,
        ctx: Ctx<'_>,
        points: &mut Vec<Point>,
        failures: &mut Vec<(String, Failure)>,
    ) {
        let backend = self.session.as_ref().map(|s| s.backend_pid);
        let alive = |pid: &u32| process::is_postgres(*pid);
        let postmaster = process::postmaster(backend, self.postmaster.filter(alive))
            .or(self.target.postmaster_pid.filter(alive));
        self.postmaster = postmaster.or(self.postmaster);
        match process::collect(&mut self.process, ctx, postmaster) {
            Ok(p) => points.extend(p),
            Err(f) => failures.push(("process".into(), f)),
        }
    }

    /// The SQL collectors, concurrently on the node's session (connecting
    /// first when there is none).
    async fn sample_sql(
        &mut self,
        ctx: Ctx<'_>,
        points: &mut Vec<Point>,
        failures: &mut Vec<(String, Failure)>,
    ) {
        if self.session.is_none() {
            let mut statements = collectors::statements();
            statements.extend(self.replication.statements());
            match Session::connect(&self.target, self.statement_timeout, &statements).await {
                Ok(s) => self.session = Some(s),
                Err(f) => {
                    failures.push(("connect".into(), f));
                    return;
                }
            }
        }
        let NodeSampler {
            session,
            locks,
            activity,
            database,
            replication,
            process,
            statements,
            custom,
            ..
        } = self;
        let Some(session) = session.as_ref() else {
            return;
        };
        let custom_all = async {
            let mut out = Vec::new();
            for q in custom.iter() {
                out.push((q.name.clone(), custom::collect(session, q, ctx).await));
            }
            out
        };
        let (l, a, d, r, s, p, c) = tokio::join!(
            locks::collect(session, locks, ctx),
            activity::collect(session, activity, ctx),
            database::collect(session, database, ctx),
            replication::collect(session, replication, ctx),
            statements::collect(session, statements, ctx),
            process::collect_pids(session, process),
            custom_all,
        );
        // Without the pid list the process collector scans /proc instead;
        // a broken session shows in the other collectors' errors.
        drop(p);
        let named = [
            ("locks".to_string(), l),
            ("activity".into(), a),
            ("database".into(), d),
            ("replication".into(), r),
            ("pg_statements".into(), s),
        ];
        for (name, result) in named.into_iter().chain(c) {
            match result {
                Ok(p) => points.extend(p),
                Err(f) => failures.push((name, f)),
            }
        }
    }
}

/// The event for a collector that started failing on `node`.
fn failure_event(node: &str, collector: &str, message: &str) -> Event {
    Event::now(
        node,
        EventKind::ProbeFailed {
            probe: format!("sampler {collector}"),
            message: message.to_string(),
        },
    )
}
