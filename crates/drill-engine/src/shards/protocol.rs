//! What the engine and its shards agree on through the store: how often each side reads it,
//! how long silence or a lost store may last, and the report a shard writes.

use std::time::Duration;

use drill_load::shard::Delta;
use serde::{Deserialize, Serialize};

/// How often shards poll the store for the stop, and the engine for reports.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// A shard that cannot reach the store this long stops sending.
pub const STORE_LOSS: Duration = Duration::from_secs(5);
/// The longest a shard waits for one answer of the store: a query held open by a partition
/// counts as no answer, so a shard behind one still stops after [`STORE_LOSS`].
pub const STORE_CALL: Duration = Duration::from_secs(2);
/// A shard without a report this long (once the traffic has started) aborts the run.
pub const SILENT_AFTER: Duration = Duration::from_secs(5);
/// A second's measurements are added this long after it ended: by then every span
/// boundary at or before it is marked.
pub(crate) const ADD_AFTER_MS: u64 = 2_000;

/// One report of a shard, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub delta: Delta,
    /// When the shard saw the stop and sent no more arrivals (its clock), if it did.
    pub stopped_ms: Option<i64>,
    /// Why it stopped before its schedule's end: the engine's stop, or its own (a signal, the
    /// store lost). A shard that stops while the engine has not is an error of the run.
    #[serde(default)]
    pub stopped_why: Option<String>,
}
