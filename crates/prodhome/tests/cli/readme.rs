//! README.md's commands work as written: the "Two commands" block resolves
//! to one binary the way `cargo run` resolves it (without building a release
//! binary), and every `prodhome …` example in "Using it" parses with the real
//! command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testkit::TestLab;

use crate::{BIN, text};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn readme() -> String {
    std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md")
}

/// The lines of the first ```sh block after the `## {heading}` line, each
/// without its trailing `# comment`.
fn sh_block(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no \"## {heading}\" section"));
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block's closing ```");
    rest[open..open + close]
        .lines()
        .map(|line| words(line).join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// Splits a shell line into words: double quotes group, `#` after a space
/// starts a comment. Enough for README examples; not a shell.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut previous) = (Vec::new(), String::new(), false, ' ');
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            '#' if !quoted && previous == ' ' => break,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(ch),
        }
        previous = ch;
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON")
}

/// The binaries `cargo run ARGS` (args before `--`) would choose from, as
/// cargo chooses: the packages `-p` names, else the workspace's default
/// members; then `--bin`, else the one package's `default-run` among them,
/// else every binary of theirs.
fn run_candidates(metadata: &Value, args: &[&str]) -> Vec<String> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1))
            .copied()
    };
    let package = flag("-p").or_else(|| flag("--package"));
    let defaults: Vec<&Value> = metadata["workspace_default_members"]
        .as_array()
        .expect("workspace_default_members (cargo 1.71+)")
        .iter()
        .collect();
    let selected: Vec<&Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| match package {
            Some(name) => p["name"] == name,
            None => defaults.contains(&&p["id"]),
        })
        .collect();
    let bins = |p: &Value| -> Vec<String> {
        p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all: Vec<String> = selected.iter().flat_map(|p| bins(p)).collect();
    if let Some(bin) = flag("--bin") {
        return all.into_iter().filter(|b| b == bin).collect();
    }
    let default_runs: Vec<&str> = selected
        .iter()
        .filter_map(|p| p["default_run"].as_str())
        .collect();
    match default_runs.as_slice() {
        [one] => vec![one.to_string()],
        _ => all,
    }
}

#[test]
fn the_readme_cargo_run_resolves_to_the_prodhome_binary() {
    let lines = sh_block(&readme(), "Two commands");
    let run = lines
        .iter()
        .find(|l| l.starts_with("cargo run"))
        .expect("a `cargo run` line in \"Two commands\"");
    let words: Vec<&str> = run.split(' ').collect();
    let split = words.iter().position(|w| *w == "--").unwrap_or(words.len());
    let metadata = metadata();
    assert_eq!(
        run_candidates(&metadata, &words[2..split]),
        ["prodhome"],
        "`{run}` must pick exactly the prodhome binary"
    );
    // What follows `--` is prodhome's own command line: it must parse.
    let mut args: Vec<&str> = words[(split + 1).min(words.len())..].to_vec();
    args.push("--help");
    let out = TestLab::new(BIN).run(&args);
    assert!(
        out.status.success(),
        "prodhome {}: {}",
        args.join(" "),
        text(&out)
    );

    let test = lines
        .iter()
        .find(|l| l.starts_with("cargo test"))
        .expect("a `cargo test` line in \"Two commands\"");
    assert!(test.contains("--workspace"), "`{test}` must test every crate");
    // The CLI tests run the dispatcher binary; it must be a workspace member.
    let members = metadata["workspace_members"].to_string();
    for crate_ in ["crates/prodhome#", "crates/dispatcher#"] {
        assert!(
            members.contains(crate_),
            "{crate_} is not a workspace member: {members}"
        );
    }
}

/// Checks that cargo's rule above is mirrored, on a workspace that has the
/// mistake this guards against.
#[test]
fn two_binaries_without_default_run_are_ambiguous() {
    let metadata: Value = serde_json::json!({
        "workspace_default_members": ["a", "b"],
        "packages": [
            {"id": "a", "name": "a", "default_run": null, "targets": [{"name": "a", "kind": ["bin"]}]},
            {"id": "b", "name": "b", "default_run": null, "targets": [{"name": "b", "kind": ["bin"]}]},
        ],
    });
    assert_eq!(run_candidates(&metadata, &["--release"]).len(), 2);
    assert_eq!(run_candidates(&metadata, &["-p", "b"]), ["b"]);
    assert_eq!(run_candidates(&metadata, &["--bin", "a"]), ["a"]);
}

#[test]
fn every_prodhome_example_in_the_readme_parses() {
    let lines = sh_block(&readme(), "Using it");
    let mut checked = 0;
    for line in &lines {
        // `eval "$(prodhome env subscriber1)"` runs `prodhome env subscriber1`.
        let Some(start) = line.find("prodhome ") else {
            continue;
        };
        let command = line[start..].trim_end_matches(")\"").trim_end_matches(')');
        let mut args: Vec<&str> = command.split(' ').skip(1).collect();
        // psql hands everything after the node to psql, --help included.
        let at = if args[0] == "psql" {
            2.min(args.len())
        } else {
            args.len()
        };
        args.insert(at, "--help");
        let out = TestLab::new(BIN).run(&args);
        assert!(
            out.status.success(),
            "README.md's `{line}` does not parse: prodhome {}\n{}",
            args.join(" "),
            text(&out)
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} prodhome examples found in \"Using it\""
    );
}
