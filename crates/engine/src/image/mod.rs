//! Images built with no registry: the host's own files packed into a tar
//! and imported, tagged by a hash of what went in so that an unchanged host
//! finds its image again without packing anything.
//!
//! - [`ImageSpec::postgres`]: PostgreSQL `N` from `/usr/lib/postgresql/N`,
//!   its share directory, zoneinfo, the `C.utf8` locale, every library `ldd`
//!   names (minus the JIT), a static busybox as `/bin/sh`, and passwd/group
//!   entries for `postgres` with the host's uid/gid, so files in a volume
//!   mean the same on both sides. It also carries the libraries of the
//!   running prodhome executable, which a lab's link proxy runs from it.
//! - [`ImageSpec::binary`]: one service binary, the libraries `ldd` names
//!   for it and a static busybox as `/bin/sh` (`binary.rs`): a service in a
//!   container with nothing of a distribution in it; [`ImageSpec::controller`]
//!   is prodhome's own, with its state directory.

mod accounts;
mod binary;
mod entries;
mod ldd;
mod tarball;

use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError};
use entries::{Entries, Entry, Owner, ROOT};

/// Bumped whenever the packer changes what it writes, so old images are
/// not taken for new ones.
pub const PACKER_VERSION: u32 = 1;

/// Where a Postgres node's volume is mounted, and its data directory in it.
pub const DATA_MOUNT: &str = "/var/lib/postgresql/data";
pub const PGDATA: &str = "/var/lib/postgresql/data/pgdata";

/// The static busybox Debian's `busybox-static` installs.
const BUSYBOX: &str = "/bin/busybox";

/// What to build: a repository name and the files that go in.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// e.g. `prodhome/postgres`; tests use their own to build cold.
    pub repository: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Postgres {
        version: u32,
    },
    Binary {
        path: PathBuf,
        /// A directory the program writes (its state), made in the image
        /// and owned by the account it then runs as.
        state_dir: Option<String>,
    },
}

/// A built (or found) image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `repository:tag`, the name containers are created from.
    pub reference: String,
    /// The engine's image id.
    pub id: String,
    /// True when the image was already there and nothing was packed.
    pub cached: bool,
    /// Bytes of tar sent to the engine (0 when cached).
    pub packed_bytes: u64,
}

impl ImageSpec {
    /// The PostgreSQL `version` image, as `prodhome/postgres`.
    pub fn postgres(version: u32) -> ImageSpec {
        ImageSpec {
            repository: "prodhome/postgres".into(),
            kind: Kind::Postgres { version },
        }
    }

    /// A tiny image holding the service binary at `path` (absolute, on the
    /// host), its libraries and busybox (`image/binary.rs`), run as `nobody`.
    pub fn binary(path: impl Into<PathBuf>) -> ImageSpec {
        ImageSpec {
            repository: "prodhome/service".into(),
            kind: Kind::Binary {
                path: path.into(),
                state_dir: None,
            },
        }
    }

    /// prodhome itself as the lab's controller (`prodhome controller`, in
    /// the files `prodhome export` writes): the binary image with
    /// `state_dir` made and owned by the host's `postgres` account, which
    /// it runs as, so that a fresh volume mounted there (which the engine
    /// fills from the image) is writable and the secret files the export
    /// gives that account are readable.
    pub fn controller(path: impl Into<PathBuf>, state_dir: &str) -> ImageSpec {
        ImageSpec {
            repository: "prodhome/controller".into(),
            kind: Kind::Binary {
                path: path.into(),
                state_dir: Some(state_dir.into()),
            },
        }
    }

    /// The same files under another repository name.
    pub fn in_repository(mut self, repository: impl Into<String>) -> ImageSpec {
        self.repository = repository.into();
        self
    }

    /// The entries, the `Dockerfile`-style changes the import applies, and
    /// the tag prefix (e.g. `15`).
    fn plan(&self) -> Result<(Entries, Vec<String>, String), EngineError> {
        match &self.kind {
            Kind::Postgres { version } => {
                let (entries, changes) = postgres_entries(*version)?;
                Ok((entries, changes, version.to_string()))
            }
            Kind::Binary { path, state_dir } => {
                let (entries, changes) = binary::entries(path, state_dir.as_deref())?;
                Ok((entries, changes, binary::tag_prefix(path)))
            }
        }
    }
}

impl ImageSpec {
    /// The `repository:tag` this host's files give, without the engine: what
    /// [`Engine::build_image`] builds or finds, and what an exported lab
    /// (`prodhome export`) pins.
    pub fn reference(&self) -> Result<String, EngineError> {
        Ok(self.planned_reference()?.2)
    }

    fn planned_reference(&self) -> Result<(Entries, Vec<String>, String), EngineError> {
        let (entries, changes, prefix) = self.plan()?;
        let hash = content_hash(&entries, &changes)?;
        let reference = format!("{}:{prefix}-{}", self.repository, &hash[..12]);
        Ok((entries, changes, reference))
    }
}

impl Engine {
    /// Builds the image `spec` describes, or finds it when the host's files
    /// are unchanged since it was built (same content hash, same tag).
    pub async fn build_image(&self, spec: &ImageSpec) -> Result<BuiltImage, EngineError> {
        let (mut entries, changes, reference) = spec.planned_reference()?;
        if let Some(id) = self.image_id(&reference).await? {
            return Ok(BuiltImage {
                reference,
                id,
                cached: true,
                packed_bytes: 0,
            });
        }
        // Only now: `ldd` over every binary is most of a cached build's time.
        add_libraries(&mut entries)?;
        let packed_bytes = self.import(entries, changes, &reference).await?;
        let id = self
            .image_id(&reference)
            .await?
            .ok_or_else(|| EngineError::Exec {
                container: "(image import)".into(),
                what: format!("importing {reference}"),
                message: "the engine accepted the tar but has no such image afterwards".into(),
            })?;
        Ok(BuiltImage {
            reference,
            id,
            cached: false,
            packed_bytes,
        })
    }

    /// Shorthand for the lab's Postgres image.
    pub async fn build_postgres_image(&self, version: u32) -> Result<BuiltImage, EngineError> {
        self.build_image(&ImageSpec::postgres(version)).await
    }

    /// The id of image `reference`, or `None` when the engine has none.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(image.id.unwrap_or_default())),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspect image {reference}"))(e)),
        }
    }

    /// Removes image `reference` (tests building their own cold image).
    pub async fn remove_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(true)
            .build();
        match self.docker.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(EngineError::api(format!("remove image {reference}"))(e)),
        }
    }

    async fn import(
        &self,
        entries: Entries,
        changes: Vec<String>,
        reference: &str,
    ) -> Result<u64, EngineError> {
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(changes)
            .build();
        let (rx, packer) = tarball::start(entries);
        let body =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
            );
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_try_stream(body)), None);
        let mut engine_error = None;
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                engine_error = Some(e);
                break;
            }
        }
        drop(progress);
        // The packer's own error says which file; prefer it to the engine's.
        let packed = packer.await.map_err(|e| EngineError::Pack {
            path: reference.into(),
            source: std::io::Error::other(e),
        })??;
        match engine_error {
            Some(e) => Err(EngineError::api(format!("import image {reference}"))(e)),
            None => Ok(packed),
        }
    }
}

/// SHA-256 over every entry's path and kind, each host file's size and
/// mtime, the data written from memory, the import's changes,
/// [`PACKER_VERSION`] and the mtimes of the library directories `ldd`
/// resolves into (a package installing or upgrading a library renames a
/// file there): any of them changing gives a new tag. The libraries are
/// added after the cache check, so the hash covers them by directory.
fn content_hash(entries: &Entries, changes: &[String]) -> Result<String, EngineError> {
    let mut hash = Sha256::new();
    hash.update(format!("packer {PACKER_VERSION}\n"));
    for dir in LIB_DIRS {
        if let Ok((_, sec, nsec)) = entries::stamp(Path::new(dir)) {
            hash.update(format!("libdir {dir} {sec}.{nsec}\n"));
        }
    }
    for change in changes {
        hash.update(format!("change {change}\n"));
    }
    for (path, entry) in &entries.map {
        let line = match entry {
            Entry::Dir { mode, owner } => format!("d {mode:o} {}:{}", owner.uid, owner.gid),
            Entry::File { source, mode } => {
                let (size, sec, nsec) = entries::stamp(source)?;
                format!("f {mode:o} {} {size} {sec}.{nsec}", source.display())
            }
            Entry::Data { bytes, mode } => format!("m {mode:o} {:x}", Sha256::digest(bytes)),
            Entry::Symlink { target } => format!("l {}", target.display()),
        };
        hash.update(format!("{} {line}\n", path.display()));
    }
    Ok(format!("{:x}", hash.finalize()))
}

fn postgres_entries(version: u32) -> Result<(Entries, Vec<String>), EngineError> {
    let lib = PathBuf::from(format!("/usr/lib/postgresql/{version}"));
    if !lib.join("bin/postgres").exists() {
        return Err(EngineError::NoPostgres {
            version,
            path: lib.join("bin/postgres"),
        });
    }
    let owner = accounts::postgres_owner()?;
    let mut entries = Entries::default();
    // The JIT pulls in all of LLVM (~100 MB) and is off in every lab.
    entries.tree(&lib, &|name| name.starts_with("llvmjit") || name == "bitcode")?;
    entries.tree(Path::new(&format!("/usr/share/postgresql/{version}")), &|_| false)?;
    entries.tree(Path::new("/usr/share/zoneinfo"), &|_| false)?;
    entries.tree(Path::new("/usr/lib/locale/C.utf8"), &|_| false)?;
    base_root(&mut entries, owner)?;
    entries.dir("/var/run/postgresql", 0o2775, owner);
    entries.dir("/var/lib/postgresql", 0o755, owner);
    entries.dir(DATA_MOUNT, 0o700, owner);
    // A lab's link proxy runs prodhome itself from this image, bind-mounted
    // (so a rebuilt prodhome needs no new image): its libraries go in before
    // the hash, so the hash covers them.
    let exe = std::env::current_exe().map_err(|source| EngineError::Pack {
        path: "/proc/self/exe".into(),
        source,
    })?;
    add_libraries_of(&mut entries, &[exe.as_path()])?;
    let changes = vec![
        format!("USER {}:{}", owner.uid, owner.gid),
        format!("ENV PATH=/usr/lib/postgresql/{version}/bin:/usr/bin:/bin"),
        format!("ENV LD_LIBRARY_PATH={LIB_PATH}"),
        "ENV LANG=C.UTF-8".into(),
        format!("ENV PGDATA={PGDATA}"),
        "EXPOSE 5432/tcp".into(),
        format!("LABEL prodhome.image=postgres prodhome.postgres_version={version}"),
    ];
    Ok((entries, changes))
}

/// Where the dynamic loader looks: there is no `ld.so.cache` in the image.
const LIB_PATH: &str = "/usr/lib/x86_64-linux-gnu:/usr/lib";

/// The host directories the packed libraries come from.
const LIB_DIRS: &[&str] = &["/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/lib64"];

/// The merged-/usr skeleton, busybox as `/bin/sh`, `/tmp`, passwd, group.
fn base_root(entries: &mut Entries, owner: Owner) -> Result<(), EngineError> {
    if !Path::new(BUSYBOX).is_file() {
        return Err(EngineError::NoBusybox { path: BUSYBOX.into() });
    }
    entries.dir("/usr/bin", 0o755, ROOT);
    entries.dir("/usr/lib64", 0o755, ROOT);
    entries.symlink("/bin", "usr/bin");
    entries.symlink("/lib", "usr/lib");
    entries.symlink("/lib64", "usr/lib64");
    entries.host_file("/usr/bin/busybox", Path::new(BUSYBOX));
    for applet in ["sh", "cat", "ls", "mkdir", "id", "sleep", "printf", "test"] {
        entries.symlink(&format!("/usr/bin/{applet}"), "busybox");
    }
    entries.dir("/tmp", 0o1777, ROOT);
    entries.dir("/etc", 0o755, ROOT);
    entries.data("/etc/passwd", accounts::passwd(owner).into_bytes());
    entries.data("/etc/group", accounts::group(owner).into_bytes());
    entries.dir("/proc", 0o555, ROOT);
    entries.dir("/sys", 0o555, ROOT);
    entries.dir("/dev", 0o755, ROOT);
    Ok(())
}

/// Every library the packed executables load, stored at its real directory
/// (through the `/lib` → `usr/lib` links) under the name `ldd` used.
fn add_libraries(entries: &mut Entries) -> Result<(), EngineError> {
    let binaries: Vec<PathBuf> = entries
        .host_files()
        .filter(|path| is_elf(path))
        .map(Path::to_owned)
        .collect();
    let refs: Vec<&Path> = binaries.iter().map(PathBuf::as_path).collect();
    add_libraries_of(entries, &refs)
}

/// The libraries `binaries` load, added as [`add_libraries`] adds them.
fn add_libraries_of(entries: &mut Entries, binaries: &[&Path]) -> Result<(), EngineError> {
    for lib in ldd::libraries(binaries)? {
        let dir = lib.parent().unwrap_or(Path::new("/"));
        let dir = std::fs::canonicalize(dir).map_err(|source| EngineError::Pack {
            path: dir.to_owned(),
            source,
        })?;
        let name = lib.file_name().unwrap_or_default();
        entries.host_file(dir.join(name), &lib);
    }
    Ok(())
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// A tar holding one file `name`, owned by the host's `postgres` account:
/// what is uploaded into a created container before its first start.
pub(crate) fn single_file_tar(name: &str, bytes: &[u8], mode: u32) -> Result<Vec<u8>, EngineError> {
    let owner = accounts::postgres_owner()?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_uid(owner.uid.into());
    header.set_gid(owner.gid.into());
    header.set_size(bytes.len() as u64);
    let io = |source| EngineError::Pack {
        path: name.into(),
        source,
    };
    tar.append_data(&mut header, name, bytes).map_err(io)?;
    tar.into_inner().map_err(io)
}
