//! Counters of one run, for the summary, the trace's result line and fuzz reports.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// What happened in a run, in numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Events processed (node steps, faults, losses at delivery).
    pub events: u64,
    /// Node steps (deliveries, timer firings, inputs, starts).
    pub steps: u64,
    pub messages_sent: u64,
    /// Requests among the messages sent (messages that are not replies): the 6.824 RPC count.
    pub requests_sent: u64,
    /// Bytes of those requests.
    pub request_bytes: u64,
    pub messages_delivered: u64,
    /// Lost at random by the network model.
    pub dropped_random: u64,
    /// Lost to a partition, cut or disconnect.
    pub dropped_partition: u64,
    /// Lost because the destination was down.
    pub dropped_crashed: u64,
    pub duplicated: u64,
    pub bytes_sent: u64,
    pub timers_fired: u64,
    /// Faults applied (crash, restart, partition, heal, network change...).
    pub faults: u64,
    pub crashes: u64,
    pub restarts: u64,
    /// Messages held back by a hold fault (delivered later, on release).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held: u64,
    /// Syncs completed (a realistic disk only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub syncs: u64,
    /// Unsynced writes a crash lost (a realistic disk only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub writes_lost: u64,
    /// Messages lost because their sender crashed before the sync they waited for.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_unsynced: u64,
    /// Messages sent per message kind.
    pub sent_by_kind: IndexMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Stats {
    /// All losses.
    pub fn dropped(&self) -> u64 {
        self.dropped_random + self.dropped_partition + self.dropped_crashed + self.dropped_unsynced
    }
}
