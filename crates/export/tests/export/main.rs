//! The export generators on labs unlike the seed (other names, two
//! publishers, services, a pinned host), checked by reading what they
//! write and by the engines' own tools, offline: docker-compose and
//! `docker stack config` for the compose formats, kubernetes-validate
//! (strict, two Kubernetes versions) for the manifests.

mod cnpg;
mod compose;
mod k8s;
mod stack;
mod write;

use std::collections::BTreeMap;
use std::path::Path;

use export::{Bundle, Images, Inputs, Target};
use model::Secret;

/// Two publishers, two subscribers (one of both), a node pinned to a host,
/// settings, a secret and two services with references.
pub(crate) const SHOP: &str = r#"name = "shop_lab"

[postgres.orders_db]
port = 25432
host = "machine-a"
settings = { max_connections = 50, work_mem = "8MB" }

[postgres.stock_db]
[postgres.replica_a]
[postgres.replica_b]

[replication.orders]
publisher = "orders_db"
subscribers = ["replica_a", "replica_b"]
schema = "db/orders.sql"
tables = ["orders", "sales.items"]

[replication.stock]
publisher = "stock_db"
subscribers = ["replica_a"]
schema = "db/stock.sql"
tables = ["stock"]

[secret.api_key]
length = 20

[service.worker]
command = ["/bin/true", "--queue", "q1"]
env = { DATABASE_URL = "${postgres.orders_db.url}", KEY = "${secret.api_key}" }
depends_on = { orders_db = "ready" }
ready = { exec = ["/bin/true"] }
restart = "on-failure"

[service.web]
command = ["/bin/true"]
depends_on = { worker = "healthy", stock_db = "started" }
restart = "no"
"#;

pub(crate) const NODES: &[&str] = &["orders_db", "stock_db", "replica_a", "replica_b"];

/// Every password the inputs carry: none may appear in a YAML file.
pub(crate) fn passwords() -> Vec<String> {
    let mut out: Vec<String> = NODES
        .iter()
        .flat_map(|n| [format!("su-{n}-Xq7"), format!("repl-{n}-Zk9")])
        .collect();
    out.push("apikey-Vb3-never-in-yaml".into());
    out
}

/// The plan of `toml` with its schema files, in a temporary directory.
pub(crate) fn plan(toml: &str) -> (tempfile::TempDir, lab::Plan) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(
        dir.path().join("db/orders.sql"),
        "create table orders (id int primary key);\ncreate schema sales;\ncreate table sales.items (id int primary key);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("db/stock.sql"),
        "create table stock (id int primary key);\n",
    )
    .unwrap();
    let file = dir.path().join("shop.toml");
    std::fs::write(&file, toml).unwrap();
    let plan = lab::load(&file).unwrap_or_else(|e| panic!("{e}"));
    (dir, plan)
}

pub(crate) fn inputs(plan: &lab::Plan) -> Inputs<'_> {
    let credentials = plan
        .nodes
        .iter()
        .map(|n| {
            let pair = (
                Secret::new(format!("su-{}-Xq7", n.name)),
                Secret::new(format!("repl-{}-Zk9", n.name)),
            );
            (n.name.clone(), pair)
        })
        .collect();
    let services = plan
        .services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                format!("prodhome/service:{}-0123456789ab", s.name),
            )
        })
        .collect();
    Inputs {
        plan,
        lab_toml: std::fs::read_to_string(plan.file.as_ref().unwrap()).unwrap(),
        images: Images {
            postgres: "prodhome/postgres:15-4e163bfd695f".into(),
            controller: "prodhome/controller:prodhome-25abdcf7e923".into(),
            services,
        },
        credentials,
        named_secrets: BTreeMap::from([("api_key".to_string(), Secret::new("apikey-Vb3-never-in-yaml"))]),
        kept_ports: BTreeMap::from([("replica_a".to_string(), 25433)]),
        postgres_ids: (101, 104),
    }
}

/// The shop lab exported for `target`.
pub(crate) fn shop(target: Target) -> Bundle {
    let (_dir, plan) = plan(SHOP);
    export::export(target, &inputs(&plan)).unwrap()
}

/// A YAML file of the bundle, parsed (every document).
pub(crate) fn docs(bundle: &Bundle, path: &str) -> Vec<serde_yaml::Value> {
    let text = &bundle.file(path).unwrap_or_else(|| panic!("no {path}")).text;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_yaml::Value| !v.is_null())
        .collect()
}

/// A program on PATH, or `None` (the caller skips, saying why).
pub(crate) fn tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Writes `bundle` into a fresh directory for a tool to read.
pub(crate) fn written(bundle: &Bundle) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    bundle.write(dir.path(), true).unwrap();
    dir
}

pub(crate) fn assert_no_password(bundle: &Bundle, path: &str) {
    let text = &bundle.file(path).unwrap().text;
    for pw in passwords() {
        assert!(!text.contains(&pw), "{path} holds a password:\n{text}");
    }
}

pub(crate) fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}
