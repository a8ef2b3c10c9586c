//! The marks the Raft and KV adapters report: a small vocabulary of abstract protocol events
//! ("sometimes" events) that coverage counts and reactive faults strike on. Scenario files
//! name them in `faults.swarm.reactive.rules[].mark`.
//!
//! Raft: `leader` (won an election), `candidate` (started one), `follower` (turned follower
//! from candidate or leader), `vote` (granted its vote to another server), `append` (a leader
//! appended a new entry to its log), `replicate` (a follower appended entries from a leader),
//! `truncate` (a follower deleted a conflicting suffix), `commit` (the commit index grew),
//! `snapshot` (the log was compacted), `install` (a snapshot from the leader was restored).
//! KV: `kv-apply` (a command was applied), `kv-duplicate` (an applied command was a duplicate), `kv-restore` (the service restored a
//! snapshot), `kv-snapshot` (the service took one).

use raft::{Event, StorageOp};
use sim::{Ctx, Node, NodeId};

/// Every mark name the adapters report, for validating scenario files.
pub const MARKS: &[&str] = &[
    "leader",
    "candidate",
    "follower",
    "vote",
    "append",
    "replicate",
    "truncate",
    "commit",
    "snapshot",
    "install",
    "kv-apply",
    "kv-duplicate",
    "kv-restore",
    "kv-snapshot",
];

/// The mark of a Raft role or commit event.
pub fn event_mark(e: &Event) -> &'static str {
    match e {
        Event::BecameLeader { .. } => "leader",
        Event::BecameCandidate { .. } => "candidate",
        Event::BecameFollower { .. } => "follower",
        Event::CommitAdvanced { .. } => "commit",
    }
}

/// The mark of a durable write of a server that is (or is not) leader; none for term and vote
/// (the vote has its own mark, see [`VoteWatch`]).
pub fn storage_mark<C>(op: &StorageOp<C>, leader: bool) -> Option<&'static str> {
    match op {
        StorageOp::HardState { .. } => None,
        StorageOp::TruncateFrom { .. } => Some("truncate"),
        StorageOp::Append { .. } if leader => Some("append"),
        StorageOp::Append { .. } => Some("replicate"),
        StorageOp::Snapshot { .. } => Some("snapshot"),
    }
}

/// Notices a vote granted in a step: the vote is in-memory state, so this sees it even when a
/// (deliberately broken) server forgets to persist it.
#[derive(Clone, Copy, Debug)]
pub struct VoteWatch {
    before: (u64, Option<NodeId>),
}

impl VoteWatch {
    /// Remembers the term and vote before a step.
    pub fn before(term: u64, voted_for: Option<NodeId>) -> Self {
        VoteWatch {
            before: (term, voted_for),
        }
    }

    /// Marks `vote` if, after the step, the server voted for another server in a way it had
    /// not before.
    pub fn after<N: Node>(
        self,
        ctx: &mut Ctx<'_, N>,
        me: NodeId,
        term: u64,
        voted_for: Option<NodeId>,
    ) {
        if voted_for.is_some_and(|v| v != me) && (term, voted_for) != self.before {
            ctx.mark("vote");
        }
    }
}
