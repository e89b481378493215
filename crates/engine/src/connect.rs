//! Reaching the engine: find the local socket, say precisely why it cannot
//! be used, and negotiate the API version down to what the engine speaks.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::EngineError;

/// The oldest Engine API prodhome uses: Docker 19.03's. Everything called
/// here (import with changes, stats, network connect with aliases) exists there.
pub const MIN_API_VERSION: (u32, u32) = (1, 40);

/// Seconds a single engine call may take before bollard gives up; an image
/// import of ~90 MB over the local socket takes a few seconds.
const CALL_TIMEOUT_S: u64 = 300;

/// A connection to the local Docker Engine, version negotiated.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    api_version: String,
    server_version: String,
}

impl Engine {
    /// Connects to the engine at `$DOCKER_HOST` (a `unix://` path) or
    /// `/var/run/docker.sock`, and negotiates the API version.
    pub async fn connect() -> Result<Engine, EngineError> {
        let socket = socket_path();
        check_socket(&socket)?;
        let docker =
            Docker::connect_with_unix(&socket.to_string_lossy(), CALL_TIMEOUT_S, API_DEFAULT_VERSION)
                .map_err(|e| no_engine(&socket, e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| no_engine(&socket, e.to_string()))?;
        let version = docker
            .version()
            .await
            .map_err(EngineError::api("report its version"))?;
        let api_version = version.api_version.unwrap_or_default();
        check_api_version(&api_version)?;
        Ok(Engine {
            docker,
            api_version,
            server_version: version.version.unwrap_or_default(),
        })
    }

    /// The API version both sides speak, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The engine's own version, e.g. `20.10.24+dfsg1`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }
}

fn socket_path() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

fn no_engine(socket: &Path, reason: String) -> EngineError {
    EngineError::NoEngine {
        socket: socket.to_owned(),
        reason,
    }
}

/// Tries the socket by hand first: bollard's own error for a missing or
/// forbidden socket is a bare hyper message that says nothing about the fix.
fn check_socket(socket: &Path) -> Result<(), EngineError> {
    match UnixStream::connect(socket) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(no_engine(socket, "the socket does not exist".into()))
        }
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Err(no_engine(
            socket,
            "nothing listens on the socket (dockerd is not running)".into(),
        )),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(EngineError::Permission {
            socket: socket.to_owned(),
            group: socket_group(socket),
        }),
        Err(e) => Err(no_engine(socket, e.to_string())),
    }
}

/// The name of the group owning the socket (`docker` on Debian).
fn socket_group(socket: &Path) -> String {
    let Ok(meta) = std::fs::metadata(socket) else {
        return "docker".into();
    };
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(':');
            let name = parts.next()?;
            let gid: u32 = parts.nth(1)?.parse().ok()?;
            (gid == meta.gid()).then(|| name.to_owned())
        })
        .next()
        .unwrap_or_else(|| "docker".into())
}

/// Fails with [`EngineError::TooOld`] when `found` (`major.minor`) is below
/// [`MIN_API_VERSION`] or cannot be read.
pub(crate) fn check_api_version(found: &str) -> Result<(), EngineError> {
    let parsed = found
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match parsed {
        Some(version) if version >= MIN_API_VERSION => Ok(()),
        _ => Err(EngineError::TooOld {
            found: if found.is_empty() {
                "(none reported)".into()
            } else {
                found.into()
            },
            needed: format!("{}.{}", MIN_API_VERSION.0, MIN_API_VERSION.1),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(check_api_version("1.41").is_ok());
        assert!(check_api_version("1.100").is_ok());
        assert!(check_api_version("2.0").is_ok());
        let old = check_api_version("1.39").unwrap_err().to_string();
        assert!(
            old.contains("speaks API 1.39") && old.contains("at least 1.40"),
            "{old}"
        );
        assert!(check_api_version("").is_err());
        assert!(check_api_version("one.two").is_err());
    }

    #[test]
    fn a_missing_socket_says_what_to_install() {
        let dir = std::env::temp_dir().join("prodhome-engine-no-socket");
        let err = check_socket(&dir.join("docker.sock")).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains("apt-get install docker.io"), "{err}");
    }
}
