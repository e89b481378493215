//! The Docker Engine layer of prodhome: everything the lab needs from the
//! engine, behind typed calls, so that a node backend on Docker is thin.
//!
//! Data flows one way: a caller (the daemon's Docker backend, the CLI's
//! `image build`, `doctor`) holds an [`Engine`] and asks it to
//!
//! - [`Engine::connect`]: reach the local socket and negotiate the API
//!   version, with an error that says what to install, start or join;
//! - [`Engine::build_postgres_image`]: pack the host's own PostgreSQL files
//!   into an image with no registry ([`image`]), cached by a content hash;
//! - create the per-lab objects, all labelled `prodhome.lab=<name>`: the lab's
//!   bridge network and a volume and a container per node ([`lab`],
//!   [`container`]), drive their lifecycle, exec into them, stream their logs
//!   and stats ([`stats`], as [`model::Point`]s), cut and mend their network
//!   links (partitions), and [`Engine::down`] remove every one of them;
//! - [`Engine::start_link_proxy`]: run the lab's replication links through
//!   prodhome's own proxy, in a container on the lab network;
//! - run an app service's container ([`service`]) from an image the engine
//!   has or one packed from the service's own program ([`ImageSpec::binary`]);
//! - [`Engine::capabilities`]: say which kernel features the engine's faults
//!   would need are missing here (netem, IPVS) instead of faking them.
//!
//! Nothing here knows about lab files or the daemon: the callers translate.

mod connect;
pub mod container;
mod error;
mod exec;
mod host_dirs;
pub mod image;
pub mod lab;
mod link_proxy;
mod probe;
pub mod service;
pub mod stats;

pub use connect::{Engine, MIN_API_VERSION};
pub use container::{ContainerSpec, ContainerState};
pub use error::EngineError;
pub use exec::ExecOutput;
pub use host_dirs::HostDirNode;
pub use image::{BuiltImage, ImageSpec};
pub use lab::{LAB_LABEL, NODE_LABEL};
pub use link_proxy::{
    LINK_PROXY_CONTROL_PORT, LINK_PROXY_EXE, LINK_PROXY_TOKEN, LinkProxySpec, link_proxy_name,
};
pub use probe::Capabilities;
pub use service::ServiceContainer;
