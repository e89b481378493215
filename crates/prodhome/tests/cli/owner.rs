//! Issue 10 item 5: only the lab's owner can change it. Another local
//! account (`nobody`) may read the lab through the API (status, the
//! dashboard) but not stop it, break it or read its data files.
//! These tests switch accounts, so they need root; they skip, saying so,
//! otherwise (CI runs as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use testkit::{TestLab, poll};

use crate::{BIN, text};

/// Two nodes and a slow hum, so that the ledger and the metrics exist.
const LAB: &str = r#"name = "owned"
[postgres.publisher]
[postgres.subscriber1]
[replication.books]
publisher = "publisher"
subscribers = ["subscriber1"]
schema = "schema.sql"
tables = ["books"]
[hum]
node = "publisher"
workload = "books"
clients = 1
rate = 5
"#;

/// Runs programs as `nobody`, with a prodhome binary it can execute.
struct Nobody {
    bin: PathBuf,
    /// A directory holding a copy of the binary, removed on drop.
    copy: Option<PathBuf>,
}

impl Drop for Nobody {
    fn drop(&mut self) {
        if let Some(dir) = &self.copy {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Nobody {
    /// `None` (with the reason printed) when this process cannot switch
    /// accounts.
    fn new() -> Option<Nobody> {
        if !nix::unistd::geteuid().is_root() {
            testkit::skip("switching to the nobody account needs root");
            return None;
        }
        let direct = Nobody {
            bin: BIN.into(),
            copy: None,
        };
        if direct.run(&[BIN, "--version"]).status.success() {
            return Some(direct);
        }
        // The test binary sits where nobody cannot reach it: copy it out.
        use std::os::unix::fs::PermissionsExt;
        static COPIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/ph-bin-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let nobody = Nobody {
            bin: dir.join("prodhome"),
            copy: Some(dir.clone()),
        };
        std::fs::copy(BIN, &nobody.bin).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&nobody.bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(nobody)
    }

    fn run(&self, argv: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .args(argv)
            .current_dir("/")
            .output()
            .expect("run runuser")
    }

    /// `prodhome ARGS` as nobody, on `lab`.
    fn prodhome(&self, lab: &TestLab, args: &[&str]) -> Output {
        let file = lab.dir().join("prodhome.toml");
        let state = lab.state();
        let mut argv = vec![
            self.bin.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        argv.extend_from_slice(args);
        self.run(&argv)
    }

    /// A raw POST as nobody → (HTTP status, body).
    fn post(&self, url: &str, body: &str, authorization: &str) -> (u16, String) {
        let out = self.run(&["/usr/bin/python3", "-c", POST, url, body, authorization]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (code, body) = stdout.split_once('\n').unwrap_or((&stdout, ""));
        let code = code
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("POST {url} as nobody did not run: {}", text(&out)));
        (code, body.to_string())
    }
}

/// POST argv[2] to argv[1] with Authorization argv[3] (none when empty);
/// prints the status code, then the body. No proxy: 127.0.0.1 is direct.
const POST: &str = r#"
import sys, urllib.request, urllib.error
url, body, auth = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
if auth:
    req.add_header("Authorization", auth)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    r = opener.open(req, timeout=30)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#;

fn daemon_info(lab: &TestLab) -> Value {
    serde_json::from_slice(&std::fs::read(lab.state().join("daemon.json")).unwrap()).unwrap()
}

fn ready_pids(lab: &TestLab) -> Vec<(String, u64)> {
    let status = lab.status();
    assert_eq!(status["phase"], "ready", "{status}");
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["state"], "ready", "{n}");
            (
                n["name"].as_str().unwrap().to_string(),
                n["pid"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn assert_unreadable(nobody: &Nobody, path: &Path) {
    assert!(path.exists(), "{} should exist", path.display());
    let out = nobody.run(&["cat", path.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out).contains("Permission denied"),
        "nobody could read {}: {}",
        path.display(),
        text(&out)
    );
}

#[test]
fn another_account_reads_the_lab_but_cannot_change_it_or_read_its_data() {
    let Some(nobody) = Nobody::new() else { return };
    let lab = TestLab::new(BIN)
        .lab(LAB)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    let api = daemon_info(&lab)["api"].as_str().unwrap().to_string();
    let before = ready_pids(&lab);
    let state = lab.state();
    poll(
        "the hum's ledger and the metrics",
        Duration::from_secs(60),
        || (state.join("hum.ledger").exists() && state.join("metrics.db").exists()).then_some(()),
    );

    // Raw requests that change the lab: refused, without and with a guess.
    let pause = serde_json::to_string(&chaos::Fault::new(
        chaos::FaultKind::Pause,
        chaos::Target::Node {
            node: "subscriber1".into(),
        },
    ))
    .unwrap();
    for (path, body) in [
        ("/api/down", ""),
        ("/api/chaos", pause.as_str()),
        ("/api/chaos/heal", ""),
        ("/api/units/publisher/stop", ""),
    ] {
        for auth in ["", "Bearer guessed"] {
            let (code, why) = nobody.post(&format!("{api}{path}"), body, auth);
            assert_eq!(code, 401, "POST {path} ({auth:?}) as nobody: {why}");
            assert!(why.contains("only the owner of lab owned"), "{why}");
        }
    }
    assert_eq!(ready_pids(&lab), before, "a refused request changed the lab");
    assert_eq!(lab.run(&["chaos", "list"]).stdout, b"no faults in force\n");

    // Reading through the CLI works for every account.
    let out = nobody.prodhome(&lab, &["status", "--json"]);
    assert!(out.status.success(), "status as nobody: {}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["phase"], "ready", "{status}");

    // Changing it through the CLI fails before asking, and says whose it is.
    for args in [
        &["down"][..],
        &["stop", "publisher"],
        &["chaos", "pause", "subscriber1"],
    ] {
        let out = nobody.prodhome(&lab, args);
        assert!(
            !out.status.success(),
            "{args:?} as nobody succeeded: {}",
            text(&out)
        );
        let said = text(&out);
        assert!(
            said.contains("only the owner of lab owned (root (uid 0)) may change it")
                && said.contains("api.token")
                && said.contains("Permission denied"),
            "{args:?} as nobody: {said}"
        );
    }
    assert_eq!(ready_pids(&lab), before, "a refused command changed the lab");

    // The lab's data is the owner's alone.
    for file in [
        "events.jsonl",
        "metrics.db",
        "hum.ledger",
        "daemon.log",
        "api.token",
        "secrets.json",
        "logs/publisher.log",
    ] {
        assert_unreadable(&nobody, &state.join(file));
    }
    // SQLite's -wal and -shm files take the database's mode.
    for entry in std::fs::read_dir(&state).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("metrics.db-") {
            assert_unreadable(&nobody, &entry.path());
        }
    }
    let ls = nobody.run(&["ls", state.join("logs").to_str().unwrap()]);
    assert!(!ls.status.success(), "nobody listed logs/: {}", text(&ls));

    // The owner changes it.
    let out = lab.run(&["down"]);
    assert!(out.status.success(), "down as root: {}", text(&out));
    assert_eq!(lab.status()["phase"], "stopped");
}

#[test]
fn the_token_of_an_earlier_daemon_is_refused() {
    let Some(nobody) = Nobody::new() else { return };
    let lab = TestLab::new(BIN)
        .lab(super::crashes::TWO_NODES)
        .file("schema.sql", lab::init::SEED_SCHEMA);
    lab.up();
    let old = std::fs::read_to_string(lab.state().join("api.token")).unwrap();
    let pid = daemon_info(&lab)["pid"].as_u64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).unwrap();
    lab.up();
    let api = daemon_info(&lab)["api"].as_str().unwrap().to_string();
    // Someone who once saw the token (a copy, a leak) has nothing.
    let (code, why) = nobody.post(&format!("{api}/api/down"), "", &format!("Bearer {}", old.trim()));
    assert_eq!(code, 401, "{why}");
    assert_eq!(lab.status()["phase"], "ready");
    // The owner's current token works on the raw API too.
    let now = std::fs::read_to_string(lab.state().join("api.token")).unwrap();
    assert_ne!(now, old);
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            POST,
            &format!("{api}/api/down"),
            "",
            &format!("Bearer {}", now.trim()),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("200"),
        "{}",
        text(&out)
    );
    poll("the daemon to stop", Duration::from_secs(60), || {
        (lab.try_status()?["phase"] == "stopped").then_some(())
    });
}
