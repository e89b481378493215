//! How far behind a replication link is, read one way for everyone: the
//! status (and the lag alerts, which read the status) and the sampler's
//! `replication` collector both run [`SLOTS`] on the publisher and read its
//! rows with [`SlotRow::read`]. Lag read only on a subscriber shows ~0 when
//! its link is cut, which is exactly when it matters, so bytes come from
//! the publisher side. A link's state also looks at the subscriber's table
//! sync states.

use tokio_postgres::{Client, Row};

use crate::error::{Error, sql};
use crate::replication::subscription_name;

/// Every replication slot of a node: active, WAL retained, bytes not yet
/// confirmed by the subscriber, the confirmed position, and the
/// walsender's write/flush/replay lag. Read by [`SlotRow::read`].
pub const SLOTS: &str = "SELECT s.slot_name, s.active,
        pg_wal_lsn_diff(w.lsn, s.restart_lsn)::bigint,
        pg_wal_lsn_diff(w.lsn, coalesce(s.confirmed_flush_lsn, s.restart_lsn))::bigint,
        pg_wal_lsn_diff(s.confirmed_flush_lsn, '0/0')::bigint,
        r.pid IS NOT NULL,
        EXTRACT(epoch FROM r.write_lag)::float8,
        EXTRACT(epoch FROM r.flush_lag)::float8,
        EXTRACT(epoch FROM r.replay_lag)::float8
    FROM pg_replication_slots s
    CROSS JOIN (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                            ELSE pg_current_wal_lsn() END AS lsn) w
    LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid";

/// One row of [`SLOTS`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow {
    pub slot: String,
    pub active: bool,
    /// WAL the slot keeps on the publisher, in bytes.
    pub retained_bytes: Option<i64>,
    /// Publisher WAL not yet confirmed by the subscriber, in bytes (≥ 0).
    pub lag_bytes: Option<i64>,
    /// The confirmed position, as bytes since `0/0`.
    pub confirmed_lsn: Option<i64>,
    /// A walsender serves the slot now (the lags below mean something).
    pub streaming: bool,
    pub write_lag_s: Option<f64>,
    pub flush_lag_s: Option<f64>,
    pub replay_lag_s: Option<f64>,
}

impl SlotRow {
    pub fn read(row: &Row) -> SlotRow {
        SlotRow {
            slot: row.get(0),
            active: row.get(1),
            retained_bytes: row.get(2),
            lag_bytes: row.get::<_, Option<i64>>(3).map(|lag| lag.max(0)),
            confirmed_lsn: row.get(4),
            streaming: row.get(5),
            write_lag_s: row.get(6),
            flush_lag_s: row.get(7),
            replay_lag_s: row.get(8),
        }
    }
}

/// One subscriber's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// "streaming", "syncing", "disconnected" or "missing".
    pub state: String,
    /// Publisher WAL not yet confirmed by the subscriber, in bytes.
    pub lag_bytes: Option<i64>,
}

/// Reads one link's status. `subscriber` is `None` when that node cannot be
/// reached (the state then comes from the publisher alone).
pub async fn link_status(
    publisher: &Client,
    subscriber: Option<&Client>,
    replication: &str,
    subscriber_name: &str,
) -> Result<LinkStatus, Error> {
    let slot = subscription_name(replication, subscriber_name);
    let rows = publisher
        .query(SLOTS, &[])
        .await
        .map_err(|e| sql("reading replication slots", e))?;
    let Some(row) = rows.iter().map(SlotRow::read).find(|r| r.slot == slot) else {
        return Ok(LinkStatus {
            state: "missing".into(),
            lag_bytes: None,
        });
    };
    let mut state = if row.active { "streaming" } else { "disconnected" };
    if let Some(sub) = subscriber {
        let pending: i64 = sub
            .query_one(
                "SELECT count(*) FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid
                 WHERE s.subname = $1 AND r.srsubstate <> 'r'",
                &[&slot],
            )
            .await
            .map_err(|e| sql("reading subscription state", e))?
            .get(0);
        if pending > 0 {
            state = "syncing";
        }
    }
    Ok(LinkStatus {
        state: state.into(),
        lag_bytes: row.lag_bytes,
    })
}
