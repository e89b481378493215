//! A throwaway server made the way prodhome makes a node — `pg`'s own
//! initdb, configuration and server command, admin over the private unix
//! socket with peer authentication — and stopped on `Drop`, also when the
//! test panics. testkit's `PgNode` is a trust-auth server for other crates;
//! these tests are of the very functions that build a node.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use model::Secret;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pg::{Account, Binaries, Credentials, NodeSpec};
use tokio_postgres::Client;

/// The Postgres major version the lab pins (ENVIRONMENT.md).
const MAJOR: u32 = 15;

/// What every server of a test needs: the binaries, the server account and
/// a private directory the account can pass through.
pub(crate) struct Machine {
    pub(crate) bins: Binaries,
    pub(crate) account: Account,
    pub(crate) dir: tempfile::TempDir,
}

impl Machine {
    /// `None` (after saying why) when Postgres or its account is missing.
    pub(crate) fn new() -> Option<Machine> {
        let bins = match pg::find_binaries(MAJOR) {
            Ok(bins) => bins,
            Err(e) => return skip(&format!("no Postgres {MAJOR} binaries: {e}")),
        };
        let account = match Account::resolve(None) {
            Ok(account) => account,
            Err(e) => return skip(&format!("no account to run servers as: {e}")),
        };
        let dir = tempfile::Builder::new()
            .prefix("pgt-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Some(Machine { bins, account, dir })
    }

    /// A node's spec with fresh passwords and a free port; nothing created.
    pub(crate) fn spec(&self, name: &str) -> NodeSpec {
        let node_dir = self.dir.path().join(name);
        NodeSpec {
            name: name.into(),
            data_dir: node_dir.join("data"),
            socket_dir: node_dir.join("run"),
            port: testkit::free_port(),
            settings: vec![("fsync".into(), "off".into())],
            credentials: Credentials {
                superuser: Secret::generate(32).expect("secret"),
                replication: Secret::generate(32).expect("secret"),
            },
            remote: None,
        }
    }

    /// The node's private directories, the server account's, as `up` makes
    /// them (the cluster itself is `ensure_clusters`' to make).
    pub(crate) fn prepare(&self, spec: &NodeSpec) {
        for dir in [spec.data_dir.parent().expect("node dir"), &spec.socket_dir] {
            std::fs::create_dir_all(dir).expect("node dir");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
            self.account.own(dir).expect("chown");
        }
    }

    /// Creates, configures and starts a node; it accepts admin sessions
    /// when this returns.
    pub(crate) async fn start(&self, name: &str) -> Server {
        let spec = self.spec(name);
        self.prepare(&spec);
        let created = pg::ensure_clusters(&self.bins, &self.account, std::slice::from_ref(&spec), None)
            .await
            .expect("ensure_clusters");
        assert_eq!(created, vec![name.to_string()]);
        self.start_existing(spec).await
    }

    /// Configures and starts a node whose cluster exists.
    pub(crate) async fn start_existing(&self, spec: NodeSpec) -> Server {
        pg::write_config(&spec, &self.account).expect("write_config");
        Server::spawn(self, spec).await
    }
}

/// One running server, stopped (immediate shutdown) on drop.
pub(crate) struct Server {
    pub(crate) spec: NodeSpec,
    pub(crate) log: PathBuf,
    child: Child,
}

impl Server {
    async fn spawn(machine: &Machine, spec: NodeSpec) -> Server {
        let log = machine.dir.path().join(format!("{}.log", spec.name));
        let out = std::fs::File::create(&log).expect("log");
        let (program, args) = pg::server_command(&machine.bins, &spec);
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0);
        if machine.account.switch {
            cmd.uid(machine.account.uid).gid(machine.account.gid);
        }
        let server = Server {
            spec,
            log,
            child: cmd.spawn().expect("start postgres"),
        };
        let what = format!("{} to answer the probe", server.spec.name);
        testkit::poll_async(&what, Duration::from_secs(60), || async {
            pg::probe(&server.spec).await.ok()
        })
        .await;
        server
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A superuser session over the unix socket, as `pg::admin` opens it.
    pub(crate) async fn admin(&self) -> Client {
        pg::admin(&self.spec).await.expect("admin session")
    }

    /// An admin session with the roles and prodhome's schema in place.
    pub(crate) async fn bootstrapped(&self) -> Client {
        let client = self.admin().await;
        pg::bootstrap(&client, &self.spec.name, &self.spec.credentials)
            .await
            .expect("bootstrap");
        client
    }

    /// A user's session over TCP as the superuser, with an application
    /// name of the user's (prodhome's own sessions are told apart by theirs).
    pub(crate) async fn user_session(&self) -> Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.spec.port)
            .user(pg::SUPERUSER)
            .password(self.spec.credentials.superuser.expose())
            .dbname(pg::DATABASE)
            .application_name("psql");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("user session");
        tokio::spawn(connection);
        client
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.spec.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGQUIT is Postgres' immediate shutdown: the postmaster takes its
        // backends (each in a session of its own) down with it, and
        // SIGKILLs the ones that linger, so the wait is bounded.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGQUIT);
        let _ = self.child.wait();
    }
}

/// The first value of the first row of `sql`.
pub(crate) async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

fn skip<T>(reason: &str) -> Option<T> {
    testkit::skip(reason);
    None
}
