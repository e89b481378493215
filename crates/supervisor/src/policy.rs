//! When to restart a unit that ended: a pure function, tested with a table.

use std::time::Duration;

use model::Exit;

/// Which endings lead to a restart (the lab file's `restart = "no" |
/// "on-failure" | "always"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    /// Never restart.
    No,
    /// Restart after an exit other than `exit(0)`, and after a failed
    /// liveness probe.
    OnFailure,
    /// Restart after any ending the supervisor was not asked for.
    Always,
}

/// How a unit is restarted: exponential backoff from `initial_backoff`,
/// doubling up to `max_backoff`, and a crash-loop limit of `max_restarts`
/// consecutive failed runs (a run that lasted `stable_after` resets the count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_restarts: u32,
    pub stable_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::Always,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_restarts: 20,
            stable_after: Duration::from_secs(30),
        }
    }
}

/// How one run of a unit ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The process exited by itself (or was killed by someone else).
    Exited(Exit),
    /// The supervisor stopped it because its liveness probe kept failing.
    /// Always a failure, even when the process then exits 0 on its stop
    /// signal.
    Unhealthy,
}

impl Ending {
    /// True unless the process exited 0 by itself.
    pub fn failed(&self) -> bool {
        match self {
            Ending::Exited(exit) => !exit.success(),
            Ending::Unhealthy => true,
        }
    }
}

/// What to do after a run ended unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after a backoff.
    Restart { after: Duration },
    /// The mode does not restart this ending (`no`, or `on-failure` after
    /// `exit(0)`): the unit stays down, and that is no alarm.
    Done,
    /// The mode wants a restart but the unit already failed `max_restarts`
    /// times in a row: it is crash-looping, stop trying and say so.
    CrashLoop,
    /// The mode wants a restart but the unit never became ready since it
    /// was first started: a typo in its configuration, a program that is
    /// not there, a port that is taken. It would end the same way again, so
    /// it is not restarted and whoever waits for it hears at once.
    NeverReady,
}

/// Decides what follows an ending, given how many consecutive restarts
/// already happened without the unit running stably in between, and
/// whether the unit was ever ready. Only a unit that was ready once is
/// restarted with backoff.
pub fn decide(policy: &RestartPolicy, ending: &Ending, consecutive: u32, ever_ready: bool) -> Decision {
    let wanted = match policy.mode {
        RestartMode::No => false,
        RestartMode::OnFailure => ending.failed(),
        RestartMode::Always => true,
    };
    if !wanted {
        return Decision::Done;
    }
    if !ever_ready {
        return Decision::NeverReady;
    }
    if consecutive >= policy.max_restarts {
        return Decision::CrashLoop;
    }
    let factor = 1u32.checked_shl(consecutive.min(31)).unwrap_or(u32::MAX);
    let after = policy
        .initial_backoff
        .checked_mul(factor)
        .unwrap_or(policy.max_backoff)
        .min(policy.max_backoff);
    Decision::Restart { after }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Ending = Ending::Exited(Exit {
        code: Some(0),
        signal: None,
    });
    const FAIL: Ending = Ending::Exited(Exit {
        code: Some(1),
        signal: None,
    });
    const KILLED: Ending = Ending::Exited(Exit {
        code: None,
        signal: Some(9),
    });
    const UNHEALTHY: Ending = Ending::Unhealthy;

    fn policy(mode: RestartMode) -> RestartPolicy {
        RestartPolicy {
            mode,
            max_restarts: 5,
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn decide_table() {
        use Decision::{CrashLoop, Done, NeverReady, Restart};
        use RestartMode::{Always, No, OnFailure};
        let ms = Duration::from_millis;
        const READY_ONCE: bool = true;
        const NEVER: bool = false;
        let cases = [
            // "no": nothing is restarted, nothing is a crash loop.
            (No, OK, 0, READY_ONCE, Done),
            (No, KILLED, 0, READY_ONCE, Done),
            (No, UNHEALTHY, 0, READY_ONCE, Done),
            (No, FAIL, 9, READY_ONCE, Done),
            (No, FAIL, 0, NEVER, Done),
            // "on-failure": exit 0 is the end of the job.
            (OnFailure, OK, 0, READY_ONCE, Done),
            (OnFailure, OK, 9, READY_ONCE, Done),
            (OnFailure, OK, 0, NEVER, Done),
            (OnFailure, FAIL, 0, READY_ONCE, Restart { after: ms(200) }),
            (OnFailure, KILLED, 1, READY_ONCE, Restart { after: ms(400) }),
            (OnFailure, UNHEALTHY, 0, READY_ONCE, Restart { after: ms(200) }),
            (OnFailure, FAIL, 5, READY_ONCE, CrashLoop),
            // Never ready since the first start: it would fail the same way.
            (OnFailure, FAIL, 0, NEVER, NeverReady),
            (OnFailure, KILLED, 0, NEVER, NeverReady),
            // "always": even exit 0.
            (Always, OK, 2, READY_ONCE, Restart { after: ms(800) }),
            (Always, KILLED, 4, READY_ONCE, Restart { after: ms(3200) }),
            (Always, UNHEALTHY, 3, READY_ONCE, Restart { after: ms(1600) }),
            (Always, KILLED, 5, READY_ONCE, CrashLoop),
            (Always, OK, 6, READY_ONCE, CrashLoop),
            (Always, OK, 0, NEVER, NeverReady),
        ];
        for (mode, ending, n, ever_ready, want) in cases {
            assert_eq!(
                decide(&policy(mode), &ending, n, ever_ready),
                want,
                "{mode:?} {ending:?} after {n}, ever ready: {ever_ready}"
            );
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let p = RestartPolicy {
            max_restarts: 1000,
            ..RestartPolicy::default()
        };
        for n in [6, 31, 32, 999] {
            assert_eq!(
                decide(&p, &KILLED, n, true),
                Decision::Restart { after: p.max_backoff }
            );
        }
    }

    #[test]
    fn an_unhealthy_ending_is_a_failure_even_after_a_clean_exit() {
        assert!(UNHEALTHY.failed());
        assert!(FAIL.failed() && KILLED.failed());
        assert!(!OK.failed());
    }
}
