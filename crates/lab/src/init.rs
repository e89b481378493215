//! The seed lab: what `prodhome init` writes, and what `up` runs when there
//! is no lab file. A publisher replicating one `books` table to two
//! subscribers, commented for someone reading a lab file for the first time.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file name `init` writes the lab to, and `up` looks for.
pub const SEED_LAB_FILE: &str = "prodhome.toml";

/// The file name `init` writes the schema to; [`SEED_TOML`] refers to it.
pub const SEED_SCHEMA_FILE: &str = "schema.sql";

/// The seed lab file.
pub const SEED_TOML: &str = r#"# A prodhome lab: a Postgres publisher replicating to two subscribers.
# `prodhome up` builds it and `prodhome down` stops it; edit, then `up` again.

# The lab's name (lowercase letters, digits and _). Its state lives in
# .prodhome/<name>/ beside this file.
name = "bookstore"

# The Postgres major version every node runs; `up` refuses other binaries.
postgres_version = 15

# One [postgres.NAME] section per Postgres server. Each gets a free port when
# `up` starts it; write `port = 15432` to pin one, and
# `settings = { max_connections = 200 }` for extra postgresql.conf settings.
[postgres.publisher]

[postgres.subscriber1]

[postgres.subscriber2]

# Logical replication: rows written to the publisher's tables are copied to
# every subscriber.
[replication.books]
publisher = "publisher"
subscribers = ["subscriber1", "subscriber2"]
# SQL run on the publisher and every subscriber before replication starts
# (replication copies rows, not tables). Relative to this file.
schema = "schema.sql"
# The tables to replicate: a list of names, or "all".
tables = ["books"]

# Background traffic ("hum"): inserts, updates and reads on books, on a
# schedule, so the lab behaves like production while you watch it. Reads go
# to the replicas, as an application would send them.
[hum]
node = "publisher"
workload = "books"        # tpcb | books | path to a pgbench-style .sql script
clients = 4
rate = 50                 # transactions per second; "max" runs flat out
read_from = ["subscriber1", "subscriber2"]

# Locks, sessions, replication lag, database rates, CPU and memory of every
# node, sampled into the embedded store (the dashboard reads it); the
# prometheus sink also serves them at /metrics on the control API's port.
[sample]
interval = "1s"
sinks = ["embedded", "prometheus"]
"#;

/// The seed lab's `schema.sql`.
pub const SEED_SCHEMA: &str = r#"-- The bookstore: applied to the publisher and to every subscriber.
-- Logical replication needs a primary key to apply updates and deletes.
create table books (
    id bigint primary key,
    title text not null,
    author text,
    price numeric(10,2),
    stock integer not null default 0,
    updated_at timestamptz not null default now()
);

-- Looking up an author's books, and finding what changed recently.
create index books_author_idx on books (author);
create index books_updated_at_idx on books (updated_at);
"#;

/// Writes the seed lab ([`SEED_LAB_FILE`], [`SEED_SCHEMA_FILE`]) into `dir`
/// and returns the paths written. Unless `force`, refuses with
/// [`io::ErrorKind::AlreadyExists`], naming the file, when either exists, and
/// then writes nothing.
pub fn write_seed(dir: &Path, force: bool) -> io::Result<Vec<PathBuf>> {
    let files = [(SEED_LAB_FILE, SEED_TOML), (SEED_SCHEMA_FILE, SEED_SCHEMA)];
    let paths: Vec<PathBuf> = files.iter().map(|(name, _)| dir.join(name)).collect();
    if !force && let Some(existing) = paths.iter().find(|p| p.symlink_metadata().is_ok()) {
        return Err(already_exists(existing));
    }
    for (path, (_, contents)) in paths.iter().zip(files) {
        let mut options = fs::OpenOptions::new();
        options.write(true);
        // `create_new` closes the gap between the check above and the write.
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let written = options
            .open(path)
            .and_then(|mut f| f.write_all(contents.as_bytes()));
        written.map_err(|error| match error.kind() {
            io::ErrorKind::AlreadyExists => already_exists(path),
            kind => io::Error::new(kind, format!("cannot write {}: {error}", path.display())),
        })?;
    }
    Ok(paths)
}

fn already_exists(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} already exists; not overwriting it without --force",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_seed(dir.path(), false).unwrap();
        assert_eq!(
            written,
            [dir.path().join("prodhome.toml"), dir.path().join("schema.sql")]
        );
        assert_eq!(fs::read_to_string(&written[0]).unwrap(), SEED_TOML);
        assert_eq!(fs::read_to_string(&written[1]).unwrap(), SEED_SCHEMA);
    }

    #[test]
    fn refuses_to_overwrite_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("schema.sql");
        fs::write(&schema, "-- mine\n").unwrap();

        let error = write_seed(dir.path(), false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert!(
            error.to_string().contains(&*schema.display().to_string()),
            "{error}"
        );
        // Nothing written, not even the file that did not exist.
        assert!(!dir.path().join("prodhome.toml").exists());
        assert_eq!(fs::read_to_string(&schema).unwrap(), "-- mine\n");

        write_seed(dir.path(), true).unwrap();
        assert_eq!(fs::read_to_string(&schema).unwrap(), SEED_SCHEMA);
    }

    #[test]
    fn names_the_directory_it_cannot_write_to() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = write_seed(&missing, false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(
            error.to_string().contains(&*missing.display().to_string()),
            "{error}"
        );
    }
}
