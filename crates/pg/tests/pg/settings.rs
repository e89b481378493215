//! Settings read by the pinned binary, without a running server.

use pg::SettingKind;

use crate::server::Machine;

#[test]
fn the_binary_describes_its_settings_and_judges_a_bad_name_and_a_bad_value() {
    let Some(machine) = Machine::new() else { return };
    let described = pg::describe_config(&machine.bins).expect("describe_config");
    let shared = described
        .iter()
        .find(|s| s.name == "shared_buffers")
        .expect("shared_buffers is described");
    assert_eq!(shared.kind, SettingKind::Integer, "{shared:?}");
    assert!(shared.min.is_some() && shared.max.is_some(), "{shared:?}");
    assert!(shared.takes().contains("integer"), "{}", shared.takes());
    let level = described
        .iter()
        .find(|s| s.name == "wal_level")
        .expect("wal_level");
    assert_eq!(level.kind, SettingKind::Enum);

    let settings: Vec<(String, String)> = [
        ("shared_buffers", "'16MB'"),
        ("no_such_setting", "1"),
        ("wal_level", "'lots'"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec();
    let problems = pg::judge_settings(&machine.bins, &machine.account, &settings).expect("judge_settings");
    let found: Vec<(usize, bool)> = problems.iter().map(|p| (p.index, p.unknown_name)).collect();
    assert_eq!(found, vec![(1, true), (2, false)], "{problems:?}");
    assert!(problems[1].message.contains("wal_level"), "{problems:?}");
    // An enum's rejection lists what it takes.
    assert!(
        problems[1].hint.as_deref().is_some_and(|h| h.contains("logical")),
        "{problems:?}"
    );

    let fine = [("shared_buffers".to_string(), "'16MB'".to_string())];
    let none = pg::judge_settings(&machine.bins, &machine.account, &fine).expect("judge_settings");
    assert!(none.is_empty(), "{none:?}");
}
