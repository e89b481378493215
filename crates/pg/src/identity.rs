//! Giving a copied cluster an identity of its own.
//!
//! A copy of the template has the template's system identifier, and its
//! catalogs hand out the same OIDs. Logical replication names the publisher
//! slots of a subscription's table sync `pg_<suboid>_sync_<relid>_<sysid>`,
//! so two subscribers copied from one template would fight over the same slot
//! names on their publisher and break each other's initial sync. Each copy
//! therefore gets a new system identifier, in the two places a cleanly shut
//! down cluster keeps it:
//!
//! - `global/pg_control`, whose CRC-32C is recomputed;
//! - the long page header at the start of every WAL segment (`xlp_sysid`,
//!   which the server checks against pg_control as it reads the segment; page
//!   headers are outside the records' CRCs). Written in place: 8 bytes a
//!   segment.
//!
//! A WAL that is not what a cleanly shut down cluster of a known layout
//! holds (a header that does not name the old identifier, a file that is not
//! a segment) is left to `pg_resetwal`, which rewrites the WAL from the
//! control file: slower (a program run and a 16 MB segment written), but it
//! takes anything.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
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
    let old = u64::from_le_bytes(bytes[..8].try_into().expect("find_crc: at least 16 bytes"));
    let new = new_system_identifier();
    // Decided before anything is written: patch the WAL, or reset it.
    let segments = wal_segments(&data_dir.join("pg_wal"), old);
    bytes[..8].copy_from_slice(&new.to_le_bytes());
    let crc = crc32c(&bytes[..crc_at]);
    bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&control, &bytes).map_err(io)?;
    match segments {
        Some(segments) => patch_segments(&segments, new),
        None => reset_wal(bins, account, data_dir).await,
    }
}

/// Where `xlp_sysid` sits in a segment's first (long) page header:
/// `xlp_magic` u16, `xlp_info` u16, `xlp_tli` u32, `xlp_pageaddr` u64,
/// `xlp_rem_len` u32 and padding, then `xlp_sysid` u64, `xlp_seg_size` u32,
/// `xlp_xlog_blcksz` u32 (the same layout since Postgres 9.3).
const SYSID_AT: usize = 24;
const LONG_HEADER_LEN: usize = 40;
/// `xlp_info`'s flag for a long header.
const XLP_LONG_HEADER: u16 = 0x0002;

/// The WAL segments in `pg_wal` to patch, when every file there is one
/// whose long header names `old` (or a segment not written yet, all zeros)
/// and at least one does; `None` leaves the WAL to `pg_resetwal`.
fn wal_segments(pg_wal: &Path, old: u64) -> Option<Vec<PathBuf>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(pg_wal).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "archive_status" && entry.file_type().ok()?.is_dir() {
            continue;
        }
        if !is_segment_name(&name) {
            return None;
        }
        let file = std::fs::File::open(entry.path()).ok()?;
        let mut header = [0u8; LONG_HEADER_LEN];
        file.read_exact_at(&mut header, 0).ok()?;
        match header_names(&header, old, file.metadata().ok()?.len()) {
            Header::Names => segments.push(entry.path()),
            Header::Unwritten => {}
            Header::Other => return None,
        }
    }
    (!segments.is_empty()).then_some(segments)
}

/// What a segment's first 40 bytes say.
#[derive(Debug, PartialEq)]
enum Header {
    /// A long header of this cluster (`old`), its sizes consistent.
    Names,
    /// All zeros: a segment made ahead and never written.
    Unwritten,
    /// Anything else.
    Other,
}

fn header_names(header: &[u8; LONG_HEADER_LEN], old: u64, file_len: u64) -> Header {
    if header.iter().all(|b| *b == 0) {
        return Header::Unwritten;
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let info = u16_at(2);
    let (sysid, seg_size, block_size) = (u64_at(SYSID_AT), u32_at(32), u32_at(36));
    let ours = info & XLP_LONG_HEADER != 0
        && sysid == old
        && u64::from(seg_size) == file_len
        && block_size.is_power_of_two()
        && (1024..=65536).contains(&block_size);
    if ours { Header::Names } else { Header::Other }
}

/// WAL segment files are named by 24 hex digits (timeline, log, segment).
fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn patch_segments(segments: &[PathBuf], new: u64) -> Result<(), Error> {
    for segment in segments {
        let patch = || {
            let file = std::fs::OpenOptions::new().write(true).open(segment)?;
            file.write_all_at(&new.to_le_bytes(), SYSID_AT as u64)
        };
        patch().map_err(|e| Error::with(ErrorKind::Init, format!("rewriting {}", segment.display()), e))?;
    }
    Ok(())
}

/// `pg_resetwal`: a new WAL made from the control file. As the server
/// account, which must own what it writes.
async fn reset_wal(bins: &Binaries, account: &Account, data_dir: &Path) -> Result<(), Error> {
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

    const OLD: u64 = 7_714_959_781_442_787_843;
    const SEG: u32 = 16 << 20;

    /// A segment's first page header as Postgres 15 writes it.
    fn long_header(info: u16, sysid: u64, seg_size: u32, block_size: u32) -> [u8; LONG_HEADER_LEN] {
        let mut h = [0u8; LONG_HEADER_LEN];
        h[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        h[2..4].copy_from_slice(&info.to_le_bytes());
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..16].copy_from_slice(&u64::from(SEG).to_le_bytes());
        h[SYSID_AT..32].copy_from_slice(&sysid.to_le_bytes());
        h[32..36].copy_from_slice(&seg_size.to_le_bytes());
        h[36..40].copy_from_slice(&block_size.to_le_bytes());
        h
    }

    #[test]
    fn only_a_long_header_naming_the_old_identifier_with_consistent_sizes_is_patched() {
        let len = u64::from(SEG);
        assert_eq!(
            header_names(&long_header(2, OLD, SEG, 8192), OLD, len),
            Header::Names
        );
        assert_eq!(header_names(&[0; LONG_HEADER_LEN], OLD, len), Header::Unwritten);
        for (what, header, file_len) in [
            ("short header", long_header(0, OLD, SEG, 8192), len),
            ("another cluster's", long_header(2, OLD + 1, SEG, 8192), len),
            ("size not the file's", long_header(2, OLD, SEG, 8192), len - 8192),
            ("odd block size", long_header(2, OLD, SEG, 8000), len),
        ] {
            assert_eq!(header_names(&header, OLD, file_len), Header::Other, "{what}");
        }
    }

    fn pg_wal(files: &[(&str, [u8; LONG_HEADER_LEN])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("archive_status")).unwrap();
        for (name, header) in files {
            let mut bytes = vec![0u8; SEG as usize];
            bytes[..LONG_HEADER_LEN].copy_from_slice(header);
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn a_wal_of_this_cluster_is_patched_in_place_and_anything_else_is_left_to_pg_resetwal() {
        let ours = long_header(2, OLD, SEG, 8192);
        let wal = pg_wal(&[
            ("000000010000000000000001", ours),
            ("000000010000000000000002", [0; LONG_HEADER_LEN]),
        ]);
        let segments = wal_segments(wal.path(), OLD).expect("patchable");
        assert_eq!(segments, [wal.path().join("000000010000000000000001")]);
        patch_segments(&segments, 42).unwrap();
        let bytes = std::fs::read(&segments[0]).unwrap();
        assert_eq!(u64::from_le_bytes(bytes[SYSID_AT..32].try_into().unwrap()), 42);
        assert_eq!(bytes[..SYSID_AT], ours[..SYSID_AT], "only xlp_sysid changes");
        assert_eq!(bytes[32..LONG_HEADER_LEN], ours[32..], "only xlp_sysid changes");

        let other = long_header(2, OLD + 1, SEG, 8192);
        let mixed = pg_wal(&[
            ("000000010000000000000001", ours),
            ("000000010000000000000002", other),
        ]);
        assert_eq!(
            wal_segments(mixed.path(), OLD),
            None,
            "a segment of another cluster"
        );
        let partial = pg_wal(&[("000000010000000000000001.partial", ours)]);
        assert_eq!(wal_segments(partial.path(), OLD), None, "not a segment name");
        let empty = pg_wal(&[("000000010000000000000001", [0; LONG_HEADER_LEN])]);
        assert_eq!(
            wal_segments(empty.path(), OLD),
            None,
            "no segment names the cluster"
        );
    }
}
