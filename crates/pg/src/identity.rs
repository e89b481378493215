//! Giving a copied cluster an identity of its own.
//!
//! A copy of the template has the template's system identifier, and its
//! catalogs hand out the same OIDs. Logical replication names the publisher
//! slots of a subscription's table sync `pg_<suboid>_sync_<relid>_<sysid>`,
//! so two subscribers copied from one template would fight over the same slot
//! names on their publisher and break each other's initial sync. Each copy
//! therefore gets a new system identifier: written into `global/pg_control`
//! (with its CRC-32C recomputed), then made consistent with the WAL by
//! `pg_resetwal`, which rewrites the WAL from the control file.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::process::Command;

use crate::account::Account;
use crate::binaries::Binaries;
use crate::error::{Error, ErrorKind};

/// Gives the (cleanly shut down) cluster in `data_dir` a new system identifier.
pub(crate) async fn reidentify(bins: &Binaries, account: &Account, data_dir: &Path) -> Result<(), Error> {
    let control = data_dir.join("global").join("pg_control");
    let io = |e| Error::with(ErrorKind::Init, format!("rewriting {}", control.display()), e);
    let mut bytes = std::fs::read(&control).map_err(io)?;
    let crc_at = find_crc(&bytes).ok_or_else(|| {
        Error::new(
            ErrorKind::Init,
            format!(
                "{} is not a control file this version of prodhome understands",
                control.display()
            ),
        )
    })?;
    bytes[..8].copy_from_slice(&new_system_identifier().to_le_bytes());
    let crc = crc32c(&bytes[..crc_at]);
    bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&control, &bytes).map_err(io)?;

    let mut cmd = Command::new(bins.tool("pg_resetwal"));
    cmd.arg("-D").arg(data_dir).kill_on_drop(true);
    if account.switch {
        cmd.uid(account.uid).gid(account.gid);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| Error::with(ErrorKind::Init, "could not run pg_resetwal", e))?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::Init,
            format!(
                "pg_resetwal on {} failed: {}",
                data_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// The control file's CRC sits right after the data it covers; its offset
/// differs between versions, so find the first 4-byte-aligned spot where
/// the stored value matches the CRC of everything before it.
fn find_crc(bytes: &[u8]) -> Option<usize> {
    (16..bytes.len().min(4096).saturating_sub(4))
        .step_by(4)
        .find(|&at| {
            let stored = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            u32::from_le_bytes(stored) == crc32c(&bytes[..at])
        })
}

/// Like initdb: seconds and microseconds of now, plus bits of the pid.
fn new_system_identifier() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.as_secs() << 32) | ((now.subsec_micros() as u64) << 12) | (std::process::id() as u64 & 0xFFF)
}

/// CRC-32C (Castagnoli), as Postgres computes it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn finds_the_crc_after_the_covered_bytes() {
        let mut bytes = vec![7u8; 8192];
        let crc = crc32c(&bytes[..296]);
        bytes[296..300].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(find_crc(&bytes), Some(296));
    }
}
