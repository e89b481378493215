use super::*;

#[test]
fn identifiers() {
    assert!(is_identifier("subscriber_1", NAME_MAX));
    assert!(is_identifier("_x", NAME_MAX));
    for bad in ["", "1a", "Pub", "a-b", "a.b", "é", &"a".repeat(41)] {
        assert!(!is_identifier(bad, NAME_MAX), "{bad:?}");
    }
    assert!(is_setting_name("auto_explain.log_min_duration"));
    assert!(!is_setting_name(".x"));
    assert!(!is_setting_name("Max"));
}

fn plan(src: &str) -> Result<Plan, Vec<Problem>> {
    let doc = crate::raw::read(src).map_err(|p| vec![p])?;
    let inputs = Inputs {
        source: src,
        file: Path::new("t.toml"),
        plan_file: None,
        dir: Path::new("/nowhere"),
        read: &|_| Err(io::ErrorKind::NotFound.into()),
    };
    check(doc, &inputs)
}

#[test]
fn settings_are_rendered_for_postgresql_conf() {
    let src = r#"name = "x"
[postgres.a.settings]
work_mem = "4MB"
max_connections = 200
fsync = false
jit = true
seq_page_cost = 1.5
application_name = "it's"
"auto_explain.log_min_duration" = 10
"#;
    let plan = plan(src).unwrap();
    let settings: Vec<(&str, &str)> = plan.nodes[0]
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        settings,
        [
            ("work_mem", "'4MB'"),
            ("max_connections", "200"),
            ("fsync", "off"),
            ("jit", "on"),
            ("seq_page_cost", "1.5"),
            ("application_name", "'it''s'"),
            ("auto_explain.log_min_duration", "10"),
        ]
    );
}

#[test]
fn ports_and_defaults() {
    let src = "name = \"x\"\napi_port = 7070\n[postgres.a]\nport = 15432\n[postgres.b]\n";
    let plan = plan(src).unwrap();
    assert_eq!(plan.postgres_version, 15);
    assert_eq!(plan.postgres_version_at, None);
    assert_eq!(plan.api_port, Some(7070));
    assert_eq!(plan.nodes[0].port, Some(15432));
    let at = plan.nodes[0].port_at.as_ref().unwrap();
    assert_eq!((at.line, at.column), (4, 8));
    assert_eq!(plan.nodes[1].port, None);
    assert!(plan.replications.is_empty());
}

#[test]
fn a_clash_with_api_port_is_reported_at_the_later_one() {
    let problems = plan("name = \"x\"\napi_port = 7070\n[postgres.a]\nport = 7070\n").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].message,
        "postgres.a.port: port 7070 is already used by api_port"
    );
    // A dotted key puts the node's port first.
    let problems = plan("name = \"x\"\npostgres.a.port = 7070\napi_port = 7070\n").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].message,
        "api_port: port 7070 is already used by postgres.a"
    );
}

#[test]
fn hum_and_sample_sections_become_plans() {
    let src = r#"name = "x"
[postgres.publisher]
[postgres.replica]
[hum]
workload = "tpcb"
clients = 8
rate = "max"
scale = 10
read_from = ["replica"]
seed = 7
long_transactions = 0.05
spikes = true
[sample]
interval = "100ms"
sinks = ["embedded", "prometheus", "influx"]
[sample.influx]
url = "http://127.0.0.1:8086/"
org = "o"
bucket = "b"
token_env = "INFLUX_TOKEN"
[[sample.query]]
name = "stock"
sql = "select author, sum(stock) as stock from books group by author"
tags = ["author"]
fields = ["stock"]
"#;
    let plan = plan(src).unwrap();
    let hum = plan.hum.unwrap();
    assert_eq!(
        hum.node, "publisher",
        "the writer defaults to the node named publisher"
    );
    assert_eq!(hum.workload, crate::plan::HumWorkload::Tpcb);
    assert_eq!((hum.clients, hum.rate, hum.scale, hum.seed), (8, None, 10, 7));
    assert_eq!(hum.read_from, ["replica"]);
    assert_eq!(
        (hum.long_transactions, hum.disconnects, hum.spikes),
        (0.05, 0.0, true)
    );
    let sample = plan.sample;
    assert_eq!(sample.interval, std::time::Duration::from_millis(100));
    assert!(sample.embedded && sample.prometheus);
    assert_eq!(
        sample.influx,
        Some(crate::plan::InfluxPlan::V2 {
            url: "http://127.0.0.1:8086".into(),
            org: "o".into(),
            bucket: "b".into(),
            token_env: "INFLUX_TOKEN".into()
        })
    );
    assert_eq!(sample.queries[0].tags, ["author"]);
    assert!(sample.queries[0].nodes.is_empty());
}

#[test]
fn chaos_scenarios_are_read_exactly_as_declared() {
    let src = r#"name = "x"
seed = 9
[postgres.p]
[postgres.s]
[replication.r]
publisher = "p"
subscribers = ["s"]
[[chaos]]
fault = "latency"
target = "p->s"
for = "5s"
every = "10s..20s"
delay = "50ms"
jitter = "5ms"
[[chaos]]
fault = "kill"
targets = ["p", "s"]
every = "30s"
"#;
    let plan = plan(src).unwrap();
    assert_eq!(plan.seed, 9);
    let [latency, kill] = plan.chaos.as_slice() else {
        panic!("{:?}", plan.chaos)
    };
    assert_eq!(latency.kind, ::chaos::FaultKind::Latency);
    assert_eq!(
        latency.targets,
        [::chaos::Target::Link {
            publisher: "p".into(),
            subscriber: "s".into()
        }]
    );
    assert_eq!(latency.duration, std::time::Duration::from_secs(5));
    assert_eq!(
        latency.every,
        (
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(20)
        )
    );
    assert_eq!(latency.template.delay, std::time::Duration::from_millis(50));
    assert_eq!(latency.template.jitter, std::time::Duration::from_millis(5));
    assert_eq!(kill.targets.len(), 2);
    assert_eq!(kill.every.0, kill.every.1);
}

#[test]
fn services_secrets_and_alerts_become_plans() {
    let src = r#"name = "x"
[postgres.db]
[secret.token]
alphabet = "hex"
[service.api]
command = ["./api", "--port", "8080"]
env = { DATABASE_URL = "${postgres.db.url}", TOKEN = "${secret.token}" }
depends_on = { db = "ready" }
ready = { tcp = 8080 }
live = { http = "http://127.0.0.1:8080/health", interval = "2s", threshold = 2 }
restart = "always"
stop_signal = "INT"
[service.worker]
command = ["./worker"]
depends_on = { api = "healthy" }
[alert]
webhook = "http://127.0.0.1:9/hook"
lag_bytes = 1000000
"#;
    let plan = plan(src).unwrap();
    let [api, worker] = plan.services.as_slice() else {
        panic!("{:?}", plan.services)
    };
    assert_eq!(api.command, ["./api", "--port", "8080"]);
    assert_eq!(
        api.env[0],
        ("DATABASE_URL".to_string(), "${postgres.db.url}".to_string())
    );
    assert_eq!(
        api.depends_on,
        [("db".to_string(), crate::plan::DependsOn::Ready)]
    );
    assert_eq!(
        api.ready.as_ref().unwrap().check,
        crate::plan::ProbeCheckPlan::Tcp(8080)
    );
    let live = api.live.as_ref().unwrap();
    assert_eq!(
        (live.interval, live.threshold),
        (std::time::Duration::from_secs(2), 2)
    );
    assert_eq!(api.restart, crate::plan::RestartPlan::Always);
    assert_eq!(api.stop_signal, "SIGINT");
    assert_eq!(worker.restart, crate::plan::RestartPlan::OnFailure);
    assert_eq!(worker.max_restarts, 5);
    assert_eq!(plan.secrets[0].alphabet, "0123456789abcdef");
    assert_eq!(plan.secrets[0].length, 32);
    let alert = plan.alert.unwrap();
    assert_eq!(
        (alert.lag_bytes, alert.down_after),
        (Some(1000000), std::time::Duration::from_secs(10))
    );
}

#[test]
fn settings_and_commands_keep_where_they_were_written() {
    let src = r#"name = "x"
[postgres.a]
settings = { max_conections = 200, work_mem = "4MB" }
[service.app]
command = ["./app", "--port", "1"]
"#;
    let plan = plan(src).unwrap();
    let at = |l: &Location| (l.line, l.column);
    let settings: Vec<_> = plan.nodes[0]
        .settings_at
        .iter()
        .map(|s| (at(&s.key), at(&s.value)))
        .collect();
    assert_eq!(settings, [((3, 14), (3, 31)), ((3, 36), (3, 47))]);
    assert_eq!(at(&plan.services[0].command_at), (5, 11));
}

#[test]
fn backend_is_native_unless_the_lab_says_docker() {
    let native = plan("name = \"x\"\n[postgres.a]\n").unwrap();
    assert_eq!(native.backend, crate::Backend::Native);
    assert_eq!(native.backend_at, None);
    let docker = plan("name = \"x\"\nbackend = \"docker\"\n[postgres.a]\n").unwrap();
    assert_eq!(docker.backend, crate::Backend::Docker);
    let at = docker.backend_at.unwrap();
    assert_eq!((at.line, at.column), (2, 11));
}

#[test]
fn a_service_runs_natively_from_an_image_or_packed() {
    let src = "name = \"x\"\nbackend = \"docker\"\n[postgres.a]\n\
               [service.native]\ncommand = [\"./app\"]\n\
               [service.named]\nimage = \"myapp:1.2\"\n\
               [service.packed]\ncommand = [\"./app\", \"-v\"]\ncontainer = true\n";
    let plan = plan(src).unwrap();
    let [native, named, packed] = plan.services.as_slice() else {
        panic!("{:?}", plan.services)
    };
    assert_eq!(native.run, crate::ServiceRun::Native);
    let crate::ServiceRun::Image { reference, at } = &named.run else {
        panic!("{:?}", named.run)
    };
    assert_eq!(reference, "myapp:1.2");
    assert_eq!((at.line, at.column), (7, 9));
    assert!(named.command.is_empty(), "the image's own command runs");
    assert_eq!((named.command_at.line, named.command_at.column), (7, 9));
    assert!(matches!(packed.run, crate::ServiceRun::Packed { .. }));
    assert_eq!(packed.command, ["./app", "-v"]);
}
