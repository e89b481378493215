//! The soak: two minutes of load and every kind of fault, then the proof.

use serde_json::Value;
use testkit::{TestLab, assert_success};

use crate::{BIN, text};

const ALL_FAULTS: &str = "kill,stop,pause,restart,latency,bandwidth,stall,reset,partition";

#[test]
fn the_same_seed_gives_the_same_fault_schedule() {
    let lab = TestLab::quiet(BIN);
    let schedule = |seed: &str| -> Value {
        let out = lab.run(&[
            "soak",
            "--duration",
            "2m",
            "--seed",
            seed,
            "--faults",
            ALL_FAULTS,
            "--dry-run",
            "--json",
        ]);
        assert_success(&out, "soak --dry-run");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["schedule"].clone()
    };
    let first = schedule("11");
    assert!(first.as_array().unwrap().len() >= 9, "{first}");
    assert_eq!(first, schedule("11"));
    assert_ne!(first, schedule("12"));
}

#[test]
fn a_two_minute_soak_with_every_fault_loses_nothing_acknowledged_and_converges() {
    let lab = TestLab::quiet(BIN);
    lab.up();
    let out = lab.run(&[
        "soak",
        "--duration",
        "2m",
        "--seed",
        "5",
        "--faults",
        ALL_FAULTS,
        "--rate",
        "100",
        "--json",
    ]);
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert_eq!(verdict["converged"], true, "{verdict}");
    assert!(verdict["acknowledged"].as_u64().unwrap() > 1000, "{verdict}");
    let faults = verdict["faults"].as_object().unwrap();
    let kinds = faults.keys().cloned().collect::<Vec<_>>().join(",");
    assert!(faults.len() >= 7, "too few kinds applied: {kinds}");
    assert!(verdict["max_converge_ms"].as_u64().is_some());
    // Every fault was undone: nothing left in force, every node ready.
    assert!(text(&lab.run(&["chaos", "list"])).contains("no faults in force"));
    assert!(
        lab.status()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "ready")
    );
}
