//! When to restart a unit that exited: a pure function, tested with a table.

use std::time::Duration;

use model::Exit;

/// Which exits lead to a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    /// Never restart.
    No,
    /// Restart after an exit other than `exit(0)`.
    OnFailure,
    /// Restart after any exit the supervisor did not ask for.
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

/// What to do after an unexpected exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Restart { after: Duration },
    GiveUp,
}

/// Decides what follows an exit, given how many consecutive restarts already
/// happened without the unit running stably in between.
pub fn decide(policy: &RestartPolicy, exit: &Exit, consecutive: u32) -> Decision {
    let wanted = match policy.mode {
        RestartMode::No => false,
        RestartMode::OnFailure => !exit.success(),
        RestartMode::Always => true,
    };
    if !wanted || consecutive >= policy.max_restarts {
        return Decision::GiveUp;
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

    const OK: Exit = Exit {
        code: Some(0),
        signal: None,
    };
    const FAIL: Exit = Exit {
        code: Some(1),
        signal: None,
    };
    const KILLED: Exit = Exit {
        code: None,
        signal: Some(9),
    };

    fn policy(mode: RestartMode) -> RestartPolicy {
        RestartPolicy {
            mode,
            max_restarts: 5,
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn decide_table() {
        let ms = Duration::from_millis;
        let cases = [
            (RestartMode::No, KILLED, 0, Decision::GiveUp),
            (RestartMode::OnFailure, OK, 0, Decision::GiveUp),
            (
                RestartMode::OnFailure,
                FAIL,
                0,
                Decision::Restart { after: ms(200) },
            ),
            (
                RestartMode::OnFailure,
                KILLED,
                1,
                Decision::Restart { after: ms(400) },
            ),
            (RestartMode::Always, OK, 2, Decision::Restart { after: ms(800) }),
            (
                RestartMode::Always,
                KILLED,
                4,
                Decision::Restart { after: ms(3200) },
            ),
            (RestartMode::Always, KILLED, 5, Decision::GiveUp),
        ];
        for (mode, exit, n, want) in cases {
            assert_eq!(decide(&policy(mode), &exit, n), want, "{mode:?} {exit} after {n}");
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let p = RestartPolicy {
            max_restarts: 1000,
            ..RestartPolicy::default()
        };
        for n in [6, 31, 32, 999] {
            assert_eq!(decide(&p, &KILLED, n), Decision::Restart { after: p.max_backoff });
        }
    }
}
