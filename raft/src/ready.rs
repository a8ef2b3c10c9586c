//! Outputs of one call into a [`Raft`](crate::Raft) node.

use serde::{Deserialize, Serialize};

use crate::{Message, NodeId, Snapshot, StorageOp};

/// What the service sees, in log order on one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Apply<C> {
    /// A committed command; indices are consecutive across the Applies of a node
    /// (a snapshot install jumps to the snapshot index).
    Command {
        /// Log index of the command.
        index: u64,
        /// Term of the entry.
        term: u64,
        /// The command.
        command: C,
    },
    /// Restore the service state from this snapshot; the next command applied
    /// will be `last_included_index + 1`.
    Snapshot {
        /// The snapshot to restore.
        snapshot: Snapshot,
    },
}

/// Observations for checkers and logs (not needed by the protocol itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The node turned follower (from candidate or leader) in `term`.
    BecameFollower {
        /// Term at the change.
        term: u64,
    },
    /// The node started an election for `term`.
    BecameCandidate {
        /// Term of the election.
        term: u64,
    },
    /// The node won the election for `term`.
    BecameLeader {
        /// Term of leadership.
        term: u64,
    },
    /// The node's commit index grew to `commit_index`.
    CommitAdvanced {
        /// New commit index.
        commit_index: u64,
    },
}

/// A ReadIndex read the leader confirmed (thesis §6.4): it still led after the read was
/// asked, and its commit index was `index` then. The service answers the read once it has
/// applied through `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    /// The caller's tag, as given to [`Raft::read_index`](crate::Raft::read_index).
    pub ctx: u64,
    /// The read index: apply at least through it, then read.
    pub index: u64,
}

/// Everything one call produced. Drain with `take_ready()` after every call,
/// then: apply `storage` in order, send `messages`, deliver `applies` in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ready<C> {
    /// Durable writes, to apply before sending any message of this Ready.
    pub storage: Vec<StorageOp<C>>,
    /// Messages to send, as (destination, message).
    pub messages: Vec<(NodeId, Message<C>)>,
    /// Committed commands and snapshots for the service, in order.
    pub applies: Vec<Apply<C>>,
    /// Observations.
    pub events: Vec<Event>,
    /// ReadIndex reads confirmed, in the order they were asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<ReadState>,
}

impl<C> Default for Ready<C> {
    fn default() -> Self {
        Ready {
            storage: Vec::new(),
            messages: Vec::new(),
            applies: Vec::new(),
            events: Vec::new(),
            reads: Vec::new(),
        }
    }
}

impl<C> Ready<C> {
    /// True if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.storage.is_empty()
            && self.messages.is_empty()
            && self.applies.is_empty()
            && self.events.is_empty()
            && self.reads.is_empty()
    }
}
