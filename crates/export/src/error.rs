//! Why an export could not be made or written; each text says what to do.

use std::path::PathBuf;

/// An export's failure.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A secret the lab needs is not in its store (the CLI generates them
    /// before exporting, so this is a caller's bug or a damaged store).
    #[error("no value for {0} in the lab's secrets store; run `prodhome export` again to generate it")]
    MissingSecret(String),
    /// A service has no image reference.
    #[error("service {0} has no image to run in a container")]
    NoImage(String),
    /// A service's env value names something that does not exist.
    #[error("service.{service}.env.{key}: {why}")]
    Reference {
        service: String,
        key: String,
        why: String,
    },
    /// The output directory holds files `prodhome export` did not write.
    #[error(
        "{} is not empty and was not written by `prodhome export`; choose another --out, empty it, or pass --force to write into it",
        dir.display()
    )]
    NotOurs { dir: PathBuf },
    /// Serialising a manifest (a bug: the types are ours).
    #[error("writing {what} as YAML: {source}")]
    Yaml {
        what: String,
        #[source]
        source: serde_yaml::Error,
    },
    /// Writing a file failed.
    #[error("writing {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
