//! `prodhome check [--json]`: what `docker compose config` is to a compose
//! file. Reads and checks the lab file and the files it names, then prints
//! the lab as `up` would run it, or every located problem. Starts nothing,
//! touches no network and creates no state directory; it only reads the
//! kept ports (`ports.json`) of a state directory that already exists.
//! Secrets are names only.
//!
//! [`collect`] gathers the problems: first `lab`'s own checks, then each of
//! [`PLAN_CHECKS`] on a lab that passed them. A new pre-start check is one
//! more function in that list; the report (`check/report.rs`) and its text
//! rendering (`check/text.rs`) need not change.

mod report;
mod text;

use std::path::PathBuf;

use anyhow::Result;
use lab::{LabError, Plan};

use crate::cli::Global;
use crate::context::{lab_file, state_dir};

pub(crate) use report::Report;

/// A check that runs on a lab `lab` found valid, returning its problems,
/// each located where the lab file has a place for it.
pub(crate) type PlanCheck = fn(&Plan) -> Vec<LabError>;

/// Every check beyond `lab`'s own, in the order their problems are listed.
pub(crate) const PLAN_CHECKS: &[PlanCheck] = &[machine];

/// What only this machine can tell (`daemon::offline::preflight`, the same checks
/// `up` runs before it starts anything): Postgres settings as the pinned
/// binary reads them, service programs that resolve. Without the binaries
/// the lab cannot run here at all, and that is said where the version is.
fn machine(plan: &Plan) -> Vec<LabError> {
    match pg::find_binaries(plan.postgres_version) {
        Ok(bins) => daemon::offline::preflight(plan, Some(&bins)),
        Err(e) => vec![LabError {
            location: plan.postgres_version_at.clone(),
            message: format!("postgres_version: {e}"),
            help: None,
        }],
    }
}

/// What checking found: the lab when it could be read and checked, and
/// every problem.
pub(crate) struct Checked {
    /// The lab file; `None` for the built-in seed lab.
    pub(crate) file: Option<PathBuf>,
    pub(crate) plan: Option<Plan>,
    pub(crate) errors: Vec<LabError>,
    /// True when no lab file was found and the built-in seed lab was checked.
    pub(crate) seed: bool,
}

/// Checks the lab `global` names (or the seed lab), collecting every problem.
pub(crate) fn collect(global: &Global) -> Result<Checked> {
    let file = lab_file(global)?;
    let loaded = match &file {
        Some(file) => lab::load(file),
        None => Ok(lab::seed()),
    };
    let seed = file.is_none();
    let (plan, errors) = match loaded {
        Ok(plan) => (Some(plan), Vec::new()),
        Err(errors) => (None, errors.0),
    };
    let mut checked = Checked {
        file,
        plan,
        errors,
        seed,
    };
    if let Some(plan) = &checked.plan {
        checked
            .errors
            .extend(PLAN_CHECKS.iter().flat_map(|check| check(plan)));
    }
    Ok(checked)
}

pub(crate) fn run(global: &Global, json: bool) -> Result<i32> {
    let checked = collect(global)?;
    let state = checked.plan.as_ref().map(|p| state_dir(global, p)).transpose()?;
    // Read only: a state directory that does not exist stays that way.
    let kept = match (&checked.plan, &state) {
        (Some(plan), Some(state)) => daemon::offline::OfflineLab::open(plan, state).ports().clone(),
        _ => Default::default(),
    };
    let report = Report::new(&checked, state.as_ref(), &kept);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.valid {
        print!("{}", text::render(&report));
    } else {
        let errors = lab::LabErrors(checked.errors);
        eprintln!("{errors}");
        let count = errors.0.len();
        let what = report.file.as_deref().unwrap_or("the lab");
        let s = if count == 1 { "" } else { "s" };
        eprintln!("\nerror: {what}: {count} problem{s}; fix them and run `prodhome check` again");
    }
    Ok(if report.valid { 0 } else { 1 })
}
