//! What the rehearsal found, the verdict against the thresholds, and how
//! it prints (text, or `--json` with the field names the issue fixed).

use serde::Serialize;

use super::apply::Attempt;
use super::load::Phase;
use super::locks::Held;
use super::squawk::Lint;

/// One subscriber after the migration.
#[derive(Debug, Serialize)]
pub(crate) struct Subscriber {
    pub(crate) subscriber: String,
    /// The change is in its catalog.
    pub(crate) has_change: bool,
    /// After the migration ended; absent when it did not arrive in time.
    pub(crate) change_after_ms: Option<u64>,
    /// "replicated", "nothing to replicate" or "not replicated (ddl follow off or failed)".
    pub(crate) state: String,
    pub(crate) max_lag_bytes: Option<i64>,
    /// Apply and sync errors counted during the rehearsal.
    pub(crate) apply_errors: Option<i64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Thresholds {
    pub(crate) max_blocked_ms: u64,
    pub(crate) max_p99_ms: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) lab: String,
    pub(crate) node: String,
    /// The file, or the command as one line.
    pub(crate) migration: String,
    pub(crate) mode: String,
    pub(crate) ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) duration_ms: u64,
    pub(crate) blocked_sessions: u64,
    pub(crate) lock_waits: u64,
    pub(crate) max_lock_wait_ms: u64,
    pub(crate) migration_waited_ms: u64,
    pub(crate) locks: Vec<Held>,
    pub(crate) hum_workload: String,
    pub(crate) before: Phase,
    pub(crate) during: Phase,
    pub(crate) after: Phase,
    pub(crate) p99_ms_before: f64,
    pub(crate) p99_ms_during: f64,
    pub(crate) p99_ms_after: f64,
    pub(crate) errors_during: u64,
    pub(crate) schema_changed: bool,
    pub(crate) replicated_after_ms: Option<u64>,
    pub(crate) subscribers: Vec<Subscriber>,
    pub(crate) squawk: Lint,
    pub(crate) thresholds: Thresholds,
    /// "pass" or "fail".
    pub(crate) verdict: String,
    pub(crate) reasons: Vec<String>,
}

impl Report {
    /// Judges the report: every reason it fails, or none.
    pub(crate) fn judge(&mut self) {
        let t = &self.thresholds;
        let mut reasons = Vec::new();
        if !self.ok {
            reasons.push("the migration failed".to_string());
        }
        if self.max_lock_wait_ms > t.max_blocked_ms {
            reasons.push(format!(
                "{} session(s) waited on its locks, the longest {} ms > --max-blocked-ms {}",
                self.blocked_sessions, self.max_lock_wait_ms, t.max_blocked_ms
            ));
        }
        if self.p99_ms_during > t.max_p99_ms as f64 {
            reasons.push(format!(
                "hum's p99 during it was {:.1} ms > --max-p99-ms {}",
                self.p99_ms_during, t.max_p99_ms
            ));
        }
        for s in &self.subscribers {
            reasons.extend(subscriber_reasons(s, self.ok && self.schema_changed));
        }
        self.verdict = if reasons.is_empty() { "pass" } else { "fail" }.into();
        self.reasons = reasons;
    }

    pub(crate) fn print(&self) {
        println!(
            "migration {} on {} (lab {}): {}",
            self.migration, self.node, self.lab, self.mode
        );
        for a in &self.attempts {
            match &a.error {
                None => println!("  attempt {}: ok in {} ms", a.attempt, a.ms),
                Some(e) => println!("  attempt {}: failed after {} ms: {e}", a.attempt, a.ms),
            }
        }
        if let Some(e) = &self.error {
            println!("  error: {e}");
        }
        println!("  duration {} ms", self.duration_ms);
        println!(
            "locks: {} session(s) blocked behind it ({} wait(s)), longest wait {} ms; it waited {} ms itself",
            self.blocked_sessions, self.lock_waits, self.max_lock_wait_ms, self.migration_waited_ms
        );
        for h in &self.locks {
            println!("  took {} on {}", h.mode, h.table);
        }
        println!(
            "hum ({}):        tps     p50 ms   p99 ms   errors",
            self.hum_workload
        );
        for (name, p) in [
            ("before", &self.before),
            ("during", &self.during),
            ("after", &self.after),
        ] {
            let errors: Vec<String> = p
                .errors_by_sqlstate
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            println!(
                "  {name:<7} {:>9.1} {:>10.1} {:>8.1}   {} {}",
                p.tps,
                p.p50_ms,
                p.p99_ms,
                p.errors,
                errors.join(" ")
            );
        }
        println!("replication:");
        for s in &self.subscribers {
            let after = s
                .change_after_ms
                .map(|ms| format!(" after {ms} ms"))
                .unwrap_or_default();
            let lag = s.max_lag_bytes.map_or_else(|| "?".to_string(), |b| b.to_string());
            let errors = s.apply_errors.map_or_else(|| "?".to_string(), |n| n.to_string());
            println!(
                "  {}: {}{after}; max lag {lag} bytes; apply errors {errors}",
                s.subscriber, s.state
            );
        }
        println!("squawk:");
        for w in &self.squawk.warnings {
            println!("  {w}");
        }
        if let Some(note) = &self.squawk.note {
            println!("  {note}");
        } else if self.squawk.warnings.is_empty() {
            println!("  no warnings");
        }
        println!(
            "verdict: {} (--max-blocked-ms {}, --max-p99-ms {})",
            self.verdict.to_uppercase(),
            self.thresholds.max_blocked_ms,
            self.thresholds.max_p99_ms
        );
        for r in &self.reasons {
            println!("  {r}");
        }
    }
}

/// Why one subscriber fails the rehearsal. `expected`: the migration
/// succeeded and changed the schema, so the change should have arrived.
fn subscriber_reasons(s: &Subscriber, expected: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    if expected && !s.has_change {
        reasons.push(format!("{}: {}", s.subscriber, s.state));
    }
    // A worker that retried while the DDL follower brought the change (rows
    // of a new column reaching the subscriber first) is shown, not failed:
    // it goes on once the change is there. Errors with the change still
    // missing are what broke replication.
    if let Some(n) = s.apply_errors.filter(|n| *n > 0 && !s.has_change) {
        reasons.push(format!(
            "{}: {n} apply error(s) during the rehearsal, and the change did not arrive",
            s.subscriber
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(has_change: bool, apply_errors: i64) -> Subscriber {
        Subscriber {
            subscriber: "replica".into(),
            has_change,
            change_after_ms: has_change.then_some(150),
            state: if has_change {
                "replicated"
            } else {
                "not replicated (ddl follow off or failed)"
            }
            .into(),
            max_lag_bytes: Some(0),
            apply_errors: Some(apply_errors),
        }
    }

    #[test]
    fn apply_errors_fail_the_rehearsal_only_when_the_change_never_arrived() {
        assert!(subscriber_reasons(&sub(true, 0), true).is_empty());
        // Retried once while the column was on its way: shown, not failed.
        assert!(subscriber_reasons(&sub(true, 1), true).is_empty());
        let missing = subscriber_reasons(&sub(false, 2), true);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[1].contains("2 apply error(s)"), "{missing:?}");
        // Nothing was expected to arrive (the migration failed): only errors count.
        assert_eq!(subscriber_reasons(&sub(false, 0), false), Vec::<String>::new());
    }
}
