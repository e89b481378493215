//! How a replication link is doing, measured from both ends: the publisher's
//! slot (is it active, how far behind is it) and the subscriber's table sync
//! states. Lag read only on a subscriber shows ~0 when its link is cut, which
//! is exactly when it matters, so bytes come from the publisher side.

use tokio_postgres::Client;

use crate::error::{Error, sql};
use crate::replication::subscription_name;

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
    let row = publisher
        .query_opt(
            "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| sql("reading replication slots", e))?;
    let Some(row) = row else {
        return Ok(LinkStatus {
            state: "missing".into(),
            lag_bytes: None,
        });
    };
    let (active, lag): (bool, Option<i64>) = (row.get(0), row.get(1));
    let mut state = if active { "streaming" } else { "disconnected" };
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
        lag_bytes: lag,
    })
}
