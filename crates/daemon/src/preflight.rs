//! Pre-start checks: the mistakes in a checked lab that only this machine
//! can reveal, found before anything is created or started, each located in
//! the lab file like the lab crate's own errors.
//!
//! - Postgres settings: the server binary of the pinned version reads the
//!   lab's settings the way a start would (`pg::judge_settings`); unknown
//!   names get a "did you mean" from the settings it documents
//!   (`pg::describe_config`), rejected values the server's own words and
//!   what the setting takes.
//! - Service programs: `command[0]` must be an executable file, relative to
//!   the service's workdir or on PATH, as the supervisor will look for it
//!   (and as `container = true` packs it); a service from an `image` runs
//!   the image's own programs.
//! - Services in containers (`image`, `container = true`) need the docker
//!   backend the lab runs with.
//!
//! What passes here can still fail at start (a library in
//! `shared_preload_libraries` that is not installed, a program that exits at
//! once): the supervisor does not restart a unit that never got ready, so
//! `up` fails with its cause at once instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lab::{Backend, LabError, NodePlan, Plan, ServicePlan, ServiceRun};
use pg::{Binaries, SettingInfo, SettingProblem};

use crate::assemble;

/// Every pre-start problem of `plan`, in file order. Needs only the plan and
/// the binaries of its Postgres version (without them, the settings are not
/// judged); starts nothing that outlives it (the binary runs for a few
/// milliseconds per node with settings).
pub(crate) fn check(plan: &Plan, bins: Option<&Binaries>) -> Vec<LabError> {
    let mut errors = bins.map(|bins| settings(plan, bins)).unwrap_or_default();
    errors.extend(plan.services.iter().filter_map(program));
    errors.extend(plan.services.iter().filter_map(|s| container_fit(plan, s)));
    errors.sort_by_key(|e| e.location.as_ref().map(|l| (l.line, l.column)));
    errors
}

fn settings(plan: &Plan, bins: &Binaries) -> Vec<LabError> {
    // Without an account to ask the binary as, `up` reports that itself.
    let Ok(account) = pg::Account::resolve(plan.run_as.as_deref()) else {
        return Vec::new();
    };
    let mut catalog = Catalog {
        bins,
        described: None,
    };
    let mut errors = Vec::new();
    for node in &plan.nodes {
        // The question could not be asked: the start will tell instead.
        let Ok(problems) = pg::judge_settings(bins, &account, &node.settings) else {
            continue;
        };
        for problem in &problems {
            errors.extend(setting_error(node, problem, &mut catalog, &bins.version));
        }
    }
    errors
}

/// `postgres --describe-config`, asked only once a setting needs it.
struct Catalog<'a> {
    bins: &'a Binaries,
    described: Option<Vec<SettingInfo>>,
}

impl Catalog<'_> {
    fn settings(&mut self) -> &[SettingInfo] {
        self.described
            .get_or_insert_with(|| pg::describe_config(self.bins).unwrap_or_default())
    }
}

fn setting_error(
    node: &NodePlan,
    problem: &SettingProblem,
    catalog: &mut Catalog<'_>,
    version: &str,
) -> Option<LabError> {
    let (name, _) = node.settings.get(problem.index)?;
    let at = node.settings_at.get(problem.index)?;
    let path = format!("postgres.{}.settings.{name}", node.name);
    if problem.unknown_name {
        let names: Vec<&str> = catalog.settings().iter().map(|s| s.name.as_str()).collect();
        let (message, help) = match lab::did_you_mean(name, &names) {
            Some(near) => (
                format!("{path}: unknown Postgres setting {name:?}; did you mean {near:?}?"),
                format!(
                    "PostgreSQL {version} has no setting {name:?}; `postgres --describe-config` lists the ones it has"
                ),
            ),
            None => (
                format!("{path}: unknown Postgres setting {name:?}"),
                format!(
                    "PostgreSQL {version} has no setting of that name: check its spelling, or remove it. \
                     A setting of an extension needs its prefix (\"pg_stat_statements.max\")"
                ),
            ),
        };
        return Some(LabError {
            location: Some(at.key.clone()),
            message,
            help: Some(help),
        });
    }
    let takes = catalog
        .settings()
        .iter()
        .find(|s| &s.name == name)
        .map(SettingInfo::takes);
    Some(LabError {
        location: Some(at.value.clone()),
        message: format!(
            "{path}: PostgreSQL {version} rejects this value: {}",
            problem.message
        ),
        help: problem.hint.clone().or(takes),
    })
}

/// Where the supervisor (or, for `container = true`, the packer) will find
/// the service's program: its path relative to the workdir, or on PATH.
pub(crate) fn locate(service: &ServicePlan) -> Option<PathBuf> {
    let program = assemble::program(service);
    if program.components().count() > 1 {
        Some(program).filter(|p| p.exists())
    } else {
        on_path(&service.command[0], search_path(service).as_deref())
    }
}

/// A service in a container needs a backend that runs containers: the
/// one `up` runs with (the file's, or `--backend`).
fn container_fit(plan: &Plan, service: &ServicePlan) -> Option<LabError> {
    let at = service.run.at()?;
    if plan.backend == Backend::Docker {
        return None;
    }
    let key = match service.run {
        ServiceRun::Image { .. } => "image",
        _ => "container",
    };
    Some(LabError {
        location: Some(at.clone()),
        message: format!(
            "service.{}.{key}: a service runs in a container only in a docker lab, and this lab's backend is {}",
            service.name,
            plan.backend.name()
        ),
        help: Some(format!(
            "add `backend = \"docker\"` at the top of the lab file (or run `up --backend docker`), \
             or remove `{key}` to run the service natively"
        )),
    })
}

/// A service whose program cannot run, located at its `command`. A
/// service from an `image` runs the image's programs, not this host's.
fn program(service: &ServicePlan) -> Option<LabError> {
    if matches!(service.run, ServiceRun::Image { .. }) {
        return None;
    }
    let path = format!("service.{}.command", service.name);
    let workdir = service.workdir.display();
    let error = |message: String, help: String| LabError {
        location: Some(service.command_at.clone()),
        message: format!("{path}: {message}"),
        help: Some(help),
    };
    if !service.workdir.is_dir() {
        return Some(error(
            format!("the service's workdir {workdir} is not a directory"),
            "create it, or fix `workdir` (relative to the lab file's directory)".into(),
        ));
    }
    let program = assemble::program(service);
    let written = &service.command[0];
    let Some(found) = locate(service) else {
        return Some(if program.components().count() > 1 {
            error(
                format!("no program {written:?}: {} does not exist", program.display()),
                format!(
                    "build or install it there, or fix the path: a path with a / is relative to the \
                     service's workdir ({workdir}); a bare name is looked up on PATH"
                ),
            )
        } else {
            error(
                format!("no program {written:?} on PATH"),
                format!(
                    "add the directory that holds it to PATH, or write its path (\"./{written}\" is relative \
                     to the service's workdir, {workdir})"
                ),
            )
        });
    };
    if found.is_dir() {
        return Some(error(
            format!("{} is a directory, not a program", found.display()),
            "name the program inside it".into(),
        ));
    }
    if !is_executable(&found) {
        return Some(error(
            format!("{} is not executable", found.display()),
            format!("chmod +x {}", found.display()),
        ));
    }
    None
}

/// The PATH the service's program is looked up on: its own `env.PATH` when
/// the lab sets one (the supervisor hands it to the child), else ours.
fn search_path(service: &ServicePlan) -> Option<std::ffi::OsString> {
    match service.env.iter().find(|(k, _)| k == "PATH") {
        Some((_, value)) => Some(value.into()),
        None => std::env::var_os("PATH"),
    }
}

/// The first `dir/name` on `path` that is a file, executable or not (so a
/// file that is there but not executable is reported as such).
fn on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::split_paths(path?).collect();
    let mut candidates = dirs.iter().map(|d| d.join(name)).filter(|p| p.is_file());
    let first = candidates.next()?;
    // Like execvp: a later executable one wins over an earlier plain file.
    Some(if is_executable(&first) {
        first
    } else {
        candidates.find(|p| is_executable(p)).unwrap_or(first)
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(command: &str, workdir: &Path, env: &[(&str, &str)]) -> ServicePlan {
        let plan = lab::parse(
            &format!("name = \"x\"\n[postgres.db]\n[service.app]\ncommand = [{command:?}]\n"),
            Path::new("lab.toml"),
            workdir,
        )
        .unwrap();
        let mut service = plan.services[0].clone();
        service.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        service
    }

    #[test]
    fn a_service_in_a_container_needs_the_docker_backend() {
        let dir = tempfile::tempdir().unwrap();
        let src = "name = \"x\"\n[postgres.db]\n[service.app]\nimage = \"myapp:1.2\"\n";
        let mut plan = lab::parse(src, Path::new("lab.toml"), dir.path()).unwrap();
        let error = container_fit(&plan, &plan.services[0]).expect("native lab refuses an image");
        let plain = error.to_string();
        assert!(
            plain.starts_with(
                "lab.toml:4:9: service.app.image: a service runs in a container only in a docker lab"
            ),
            "{plain}"
        );
        assert!(plain.contains("--backend docker"), "{plain}");
        assert!(
            program(&plan.services[0]).is_none(),
            "the image brings its program"
        );
        plan.backend = Backend::Docker;
        assert!(container_fit(&plan, &plan.services[0]).is_none());
    }

    #[test]
    fn a_service_program_must_exist_and_be_executable() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("app");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let check = |command: &str, env: &[(&str, &str)]| {
            program(&service(command, dir.path(), env)).map(|e| e.to_string())
        };
        let plain = check("./app", &[]).unwrap();
        assert!(
            plain.starts_with("lab.toml:4:11: service.app.command: "),
            "{plain}"
        );
        assert!(
            plain.contains("is not executable") && plain.contains("chmod +x"),
            "{plain}"
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check("./app", &[]), None);
        let missing = check("./bin/nope", &[]).unwrap();
        assert!(missing.contains("no program \"./bin/nope\""), "{missing}");
        // A bare name is looked up on PATH, the service's own when it sets one.
        let dirs = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(check("app", &[("PATH", &dirs)]), None);
        let not_on_path = check("app", &[("PATH", "/nonexistent")]).unwrap();
        assert!(
            not_on_path.contains("no program \"app\" on PATH"),
            "{not_on_path}"
        );
        assert_eq!(check("sh", &[]), None);
        let a_dir = check(&dir.path().display().to_string(), &[]).unwrap();
        assert!(a_dir.contains("is a directory"), "{a_dir}");
    }
}
