//! Seeded fault timelines: the same scenarios and seed give the same faults
//! at the same offsets, every run.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault::{Fault, FaultKind, Target};

/// One `[[chaos]]` entry (or one kind of a soak's `--faults`): a fault on
/// one of `targets`, lasting `duration`, every `every.0..=every.1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub kind: FaultKind,
    /// Chosen from at random each time; never empty.
    pub targets: Vec<Target>,
    pub duration: Duration,
    pub every: (Duration, Duration),
    /// Parameters for latency and bandwidth faults.
    pub template: Fault,
}

/// A fault and when, from the start of the run, to apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Duration,
    pub fault: Fault,
}

/// Every fault the scenarios apply within `horizon`, in time order. Each
/// scenario draws from its own stream (derived from `seed` and its index),
/// so adding a scenario does not change the others' timelines.
pub fn schedule(scenarios: &[Scenario], seed: u64, horizon: Duration) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        if scenario.targets.is_empty() {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (low, high) = (
            scenario.every.0.as_millis() as u64,
            scenario.every.1.as_millis() as u64,
        );
        let mut at = Duration::ZERO;
        // Bounded: every gap is at least 1 ms and the horizon is finite.
        for _ in 0..100_000 {
            let gap = if high > low {
                rng.random_range(low..=high)
            } else {
                low
            }
            .max(1);
            at += Duration::from_millis(gap);
            if at >= horizon {
                break;
            }
            let target = scenario.targets[rng.random_range(0..scenario.targets.len())].clone();
            let mut fault = scenario.template.clone();
            fault.kind = scenario.kind;
            fault.target = target;
            fault.duration = (!scenario.kind.instant()).then_some(scenario.duration);
            planned.push(Planned { at, fault });
            // The next one starts counting once this one is over.
            at += scenario.duration;
        }
    }
    planned.sort_by_key(|p| p.at);
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(kind: FaultKind, targets: &[&str]) -> Scenario {
        let targets: Vec<Target> = targets
            .iter()
            .map(|t| Target::Node { node: t.to_string() })
            .collect();
        Scenario {
            kind,
            template: Fault::new(kind, targets[0].clone()),
            targets,
            duration: Duration::from_secs(2),
            every: (Duration::from_secs(5), Duration::from_secs(15)),
        }
    }

    #[test]
    fn same_seed_same_timeline_other_seed_other_timeline() {
        let scenarios = [
            scenario(FaultKind::Pause, &["a", "b", "c"]),
            scenario(FaultKind::Kill, &["a", "b"]),
        ];
        let horizon = Duration::from_secs(600);
        let one = schedule(&scenarios, 42, horizon);
        assert_eq!(one, schedule(&scenarios, 42, horizon));
        assert_ne!(one, schedule(&scenarios, 43, horizon));
        assert!(one.len() > 40, "{}", one.len());
        assert!(one.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(one.iter().all(|p| p.at < horizon));
        let kills = one.iter().filter(|p| p.fault.kind == FaultKind::Kill).count();
        assert!(kills > 10);
        // Instant faults carry no duration; others carry the scenario's.
        assert!(
            one.iter()
                .all(|p| (p.fault.duration.is_none()) == p.fault.kind.instant())
        );
    }

    #[test]
    fn a_scenario_faults_no_more_often_than_every_allows() {
        let plan = schedule(&[scenario(FaultKind::Stall, &["a"])], 7, Duration::from_secs(300));
        for pair in plan.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= Duration::from_secs(5 + 2), "{gap:?}");
            assert!(gap <= Duration::from_secs(15 + 2), "{gap:?}");
        }
    }

    #[test]
    fn adding_a_scenario_leaves_the_others_alone() {
        let a = scenario(FaultKind::Pause, &["a", "b"]);
        let b = scenario(FaultKind::Kill, &["c"]);
        let horizon = Duration::from_secs(300);
        let alone: Vec<_> = schedule(std::slice::from_ref(&a), 9, horizon);
        let both = schedule(&[a, b], 9, horizon);
        let pauses: Vec<_> = both
            .into_iter()
            .filter(|p| p.fault.kind == FaultKind::Pause)
            .collect();
        assert_eq!(alone, pauses);
    }
}
