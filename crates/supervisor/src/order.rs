//! Start order from `depends_on`: waves of units that may start together,
//! each wave after everything it depends on. Pure, so tested with data.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// What a dependent waits for (the lab file's `depends_on = { NAME =
/// "started" | "ready" | "healthy" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The process runs (it has a pid), whether or not it serves yet.
    Started,
    /// Its ready probe passed (or it has none and started).
    Ready,
    /// Ready, and its live probe passed too (the same as ready without one).
    Healthy,
}

impl Condition {
    pub fn as_str(&self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Healthy => "healthy",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Condition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "started" => Ok(Condition::Started),
            "ready" => Ok(Condition::Ready),
            "healthy" => Ok(Condition::Healthy),
            other => Err(format!(
                "expected \"started\", \"ready\" or \"healthy\", found {other:?}"
            )),
        }
    }
}

/// Why no start order exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("{unit} depends on {dependency:?}, which does not exist; units are {}", .known.join(", "))]
    Unknown {
        unit: String,
        dependency: String,
        known: Vec<String>,
    },
    /// `path` starts and ends with the same unit: `a -> b -> a`.
    #[error("dependency cycle: {}; remove one of these depends_on", .path.join(" -> "))]
    Cycle { path: Vec<String> },
    #[error("two units are named {0:?}; names must be unique")]
    Duplicate(String),
}

/// Groups `units` (name, its dependencies) into waves: every unit in a wave
/// depends only on units of earlier waves, so a wave can start in parallel
/// once the previous waves met their conditions. Within a wave, units keep
/// their input order.
pub fn start_order(units: &[(String, Vec<(String, Condition)>)]) -> Result<Vec<Vec<String>>, OrderError> {
    let mut index = HashMap::new();
    for (i, (name, _)) in units.iter().enumerate() {
        if index.insert(name.as_str(), i).is_some() {
            return Err(OrderError::Duplicate(name.clone()));
        }
    }
    // deps[i]: the units i waits for, each once.
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(units.len());
    for (name, wanted) in units {
        let mut mine = Vec::new();
        for (dep, _) in wanted {
            let Some(&j) = index.get(dep.as_str()) else {
                return Err(OrderError::Unknown {
                    unit: name.clone(),
                    dependency: dep.clone(),
                    known: units.iter().map(|(n, _)| n.clone()).collect(),
                });
            };
            if !mine.contains(&j) {
                mine.push(j);
            }
        }
        deps.push(mine);
    }
    let mut dependents = vec![Vec::new(); units.len()];
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    for (i, mine) in deps.iter().enumerate() {
        for &j in mine {
            dependents[j].push(i);
        }
    }
    let mut waves = Vec::new();
    let mut wave: Vec<usize> = (0..units.len()).filter(|&i| waiting[i] == 0).collect();
    let mut placed = 0;
    while !wave.is_empty() {
        placed += wave.len();
        let mut next = Vec::new();
        for &i in &wave {
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    next.push(d);
                }
            }
        }
        next.sort_unstable();
        waves.push(wave.iter().map(|&i| units[i].0.clone()).collect());
        wave = next;
    }
    if placed < units.len() {
        return Err(OrderError::Cycle {
            path: cycle(&deps, &waiting)
                .into_iter()
                .map(|i| units[i].0.clone())
                .collect(),
        });
    }
    Ok(waves)
}

/// A cycle among the units still waiting: each of them waits for another
/// one still waiting, so walking those edges must come back to a unit seen.
fn cycle(deps: &[Vec<usize>], waiting: &[usize]) -> Vec<usize> {
    let stuck = |i: usize| waiting[i] > 0;
    let Some(start) = (0..deps.len()).find(|&i| stuck(i)) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut at = start;
    loop {
        let Some(&next) = deps[at].iter().find(|&&j| stuck(j)) else {
            return path; // unreachable by the argument above
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut found = path.split_off(pos);
            found.push(next);
            return found;
        }
        path.push(next);
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (unit, the units it depends on)
    type Spec<'a> = [(&'a str, &'a [&'a str])];

    fn lab(spec: &Spec<'_>) -> Vec<(String, Vec<(String, Condition)>)> {
        spec.iter()
            .map(|(name, deps)| {
                let deps = deps.iter().map(|d| (d.to_string(), Condition::Ready)).collect();
                (name.to_string(), deps)
            })
            .collect()
    }

    fn names(waves: &[&[&str]]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|w| w.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn independent_units_share_a_wave_and_dependents_follow() {
        let units = lab(&[
            ("web", &["api", "publisher"]),
            ("publisher", &[]),
            ("api", &["publisher", "cache"]),
            ("cache", &[]),
            ("worker", &["publisher", "publisher"]),
        ]);
        let want = names(&[&["publisher", "cache"], &["api", "worker"], &["web"]]);
        assert_eq!(start_order(&units), Ok(want));
        assert_eq!(start_order(&[]), Ok(vec![]));
    }

    #[test]
    fn a_cycle_is_named_by_its_path() {
        let cases: [(&Spec<'_>, &str); 3] = [
            (&[("a", &["b"]), ("b", &["a"])], "a -> b -> a"),
            (&[("a", &["a"])], "a -> a"),
            (
                &[("ok", &[]), ("x", &["ok", "y"]), ("y", &["z"]), ("z", &["x"])],
                "x -> y -> z -> x",
            ),
        ];
        for (spec, want) in cases {
            let err = start_order(&lab(spec)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("dependency cycle: {want}; remove one of these depends_on")
            );
        }
    }

    #[test]
    fn an_unknown_or_duplicate_name_is_an_error_that_names_it() {
        let err = start_order(&lab(&[("web", &["api"]), ("db", &[])])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"web depends on "api", which does not exist; units are web, db"#
        );
        let err = start_order(&lab(&[("a", &[]), ("a", &[])])).unwrap_err();
        assert_eq!(err, OrderError::Duplicate("a".into()));
    }

    #[test]
    fn conditions_parse_from_their_lab_file_names() {
        for c in [Condition::Started, Condition::Ready, Condition::Healthy] {
            assert_eq!(c.as_str().parse::<Condition>(), Ok(c));
        }
        assert!("up".parse::<Condition>().unwrap_err().contains("\"healthy\""));
    }
}
