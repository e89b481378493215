//! hum's tables on a lab node, and on every subscriber whose publication
//! carries them: the one place the daemon's own hum, `prodhome hum --init`
//! and `prodhome soak` prepare a workload's tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use lab::{Plan, Tables};

use crate::layout::StateDir;

/// By replication, the tables every one of its subscriptions carries,
/// ready.
pub(crate) type Carried = BTreeMap<String, Vec<String>>;

/// How long subscribers may take to copy the tables hum created.
const SHARE_TIMEOUT: Duration = Duration::from_secs(120);

/// Makes `target`, a node of the lab, ready for `workload` (as
/// [`hum::init`], or [`hum::init_fresh`] with `fresh`), and every
/// subscriber of a replication that publishes the workload's tables from
/// it gets them too, with the publisher's rows: created on the subscribers
/// first, so their apply workers never meet rows of a table they lack, then
/// on the publisher, then copied (`pg::prepare_new_tables` has the whole
/// order). `carried`: by replication, the tables its subscriptions are
/// known to carry, ready (what `up` just set up), which need no sharing.
pub(crate) async fn init(
    plan: &Plan,
    state: &StateDir,
    nodes: &[pg::NodeSpec],
    target: &hum::Target,
    workload: &hum::Workload,
    fresh: bool,
    carried: &Carried,
) -> Result<()> {
    let replications: Vec<pg::Published> = plan
        .replications
        .iter()
        .map(|r| pg::Published {
            name: &r.name,
            publisher: &r.publisher,
            subscribers: &r.subscribers,
            tables: match &r.tables {
                Tables::All => None,
                Tables::List(list) => Some(list),
            },
            carried: carried.get(&r.name).map_or(&[], Vec::as_slice),
        })
        .collect();
    let tables = workload.schema_sql();
    let new = pg::NewTables {
        node: &target.name,
        tables: &tables,
        recreate: hum::init_recreates(target, workload, fresh).await?,
    };
    let log_of = |node: &str| -> Option<PathBuf> { Some(state.node_log(node)) };
    let pending = pg::prepare_new_tables(nodes, &replications, &new, log_of).await?;
    if fresh {
        hum::init_fresh(target, workload).await?;
    } else {
        hum::init(target, workload).await?;
    }
    pending.finish(SHARE_TIMEOUT).await?;
    Ok(())
}
