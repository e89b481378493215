//! The one error type of the engine layer: each variant carries what went
//! wrong and, in its message, what to do about it.

use std::path::PathBuf;

/// What can go wrong talking to the Docker Engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no Docker Engine answers at {socket}: {reason}\n  \
         fix: install Debian's docker.io (`apt-get install docker.io`) and start the engine \
         (`systemctl start docker`, or `dockerd &` where there is no systemd)"
    )]
    NoEngine { socket: PathBuf, reason: String },

    #[error(
        "permission denied on the Docker socket {socket}\n  \
         fix: run as root, or add your account to the socket's group \
         (`usermod -aG {group} $USER`, then log in again)"
    )]
    Permission { socket: PathBuf, group: String },

    #[error(
        "the Docker Engine here speaks API {found}, prodhome needs at least {needed}\n  \
         fix: upgrade the engine (Debian's docker.io 20.10 or newer)"
    )]
    TooOld { found: String, needed: String },

    #[error("the Docker Engine refused to {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "127.0.0.1:{port} is already taken, so container {container} cannot publish it\n  \
         fix: stop what listens there (`ss -ltnp 'sport = :{port}'`) or give the node another port"
    )]
    PortTaken { port: u16, container: String },

    #[error(
        "service {service}: the image {image:?} is not in the Docker Engine here, and prodhome pulls nothing \
         (no registry is used)\n  \
         fix: build or load it into this engine first (`docker build -t {image} .`, or `docker load -i FILE.tar`), \
         or use `container = true` to pack the service's own program"
    )]
    NoImage { image: String, service: String },

    #[error("cannot pack {path} into the image: {source}\n  fix: check that the file is readable")]
    Pack {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "PostgreSQL {version} is not installed here ({path} is missing)\n  \
         fix: `apt-get install postgresql-{version}`, or set the lab's postgres_version to an installed one"
    )]
    NoPostgres { version: u32, path: PathBuf },

    #[error("the static busybox {path} is missing\n  fix: `apt-get install busybox-static`")]
    NoBusybox { path: PathBuf },

    #[error("`ldd {binary}` failed: {message}\n  fix: check that {binary} is a working executable")]
    Ldd { binary: PathBuf, message: String },

    #[error("the account `{name}` is missing on this host\n  fix: {fix}")]
    NoAccount { name: String, fix: String },

    #[error("{what} in container {container} failed: {message}")]
    Exec {
        container: String,
        what: String,
        message: String,
    },
}

impl EngineError {
    /// Wraps a bollard error with the call that failed, for [`EngineError::Api`].
    pub(crate) fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let what = what.into();
        move |source| EngineError::Api { what, source }
    }

    /// True when the engine answered "no such object" (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError { status_code: 404, .. },
                ..
            }
        )
    }
}
