//! The accounts written into an image: `postgres` with the host's own uid
//! and gid, so a volume's files belong to the same account on both sides.

use super::entries::Owner;
use crate::EngineError;

/// The host's `postgres` uid and gid.
pub(crate) fn postgres_owner() -> Result<Owner, EngineError> {
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or_else(|| EngineError::NoAccount {
            name: "postgres".into(),
            fix: "install PostgreSQL (`apt-get install postgresql-15`), which creates it".into(),
        })?;
    Ok(Owner {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

pub(crate) fn passwd(owner: Owner) -> String {
    format!(
        "root:x:0:0:root:/root:/bin/sh\n\
         postgres:x:{}:{}:PostgreSQL administrator:/var/lib/postgresql:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        owner.uid, owner.gid
    )
}

pub(crate) fn group(owner: Owner) -> String {
    format!("root:x:0:\npostgres:x:{}:\nnogroup:x:65534:\n", owner.gid)
}
