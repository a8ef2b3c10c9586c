//! Messages exchanged between Raft peers.
//!
//! There is no RPC layer: a reply is just another message, so every reply
//! carries enough to be handled when it arrives late, twice, or out of order.
//! In particular every reply names the request it answers by that request's
//! term (`request_term`): the replier's own `term` may be newer, so without it
//! a leader re-elected in the replier's term could not tell a reply to one of
//! its requests from a reply to a request it sent in an earlier term.

use serde::{Deserialize, Serialize};

use crate::{Command, Entry, NodeId, Snapshot};

/// Fixed per-message overhead charged by [`Message::size_bytes`].
const HEADER_BYTES: usize = 24;

/// A message between Raft peers (Figure 2 RPCs and their replies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message<C> {
    /// Candidate asks for a vote.
    RequestVote {
        /// Candidate's term.
        term: u64,
        /// Candidate requesting the vote.
        candidate_id: NodeId,
        /// Index of the candidate's last log entry.
        last_log_index: u64,
        /// Term of the candidate's last log entry.
        last_log_term: u64,
    },
    /// Answer to `RequestVote`.
    RequestVoteReply {
        /// Voter's current term (for the candidate to update itself).
        term: u64,
        /// Term of the RequestVote this answers (only answers to the current
        /// election count).
        request_term: u64,
        /// True means the candidate received the vote for `term`.
        vote_granted: bool,
    },
    /// Leader replicates entries (empty for a heartbeat) and announces its commit index.
    AppendEntries {
        /// Leader's term.
        term: u64,
        /// So followers can redirect clients.
        leader_id: NodeId,
        /// Index of the entry immediately preceding `entries`.
        prev_log_index: u64,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: u64,
        /// Entries to store, contiguous from `prev_log_index + 1`.
        entries: Vec<Entry<C>>,
        /// Leader's commit index.
        leader_commit: u64,
    },
    /// Answer to `AppendEntries`.
    AppendEntriesReply {
        /// Follower's current term.
        term: u64,
        /// Term of the AppendEntries this answers (a leader ignores answers to
        /// requests of an earlier term).
        request_term: u64,
        /// True if the follower held an entry matching prev_log_index/prev_log_term.
        success: bool,
        /// On success: the follower's log is known to match the leader's through
        /// this index (`prev_log_index + entries.len()`). 0 on failure.
        match_index: u64,
        /// On a log mismatch: the term of the follower's conflicting entry at
        /// `prev_log_index`, or `None` if the follower's log is too short.
        conflict_term: Option<u64>,
        /// On a log mismatch: the first index the follower holds with
        /// `conflict_term`, or its last index + 1 when its log is too short.
        conflict_index: u64,
    },
    /// Leader sends its snapshot to a follower that lags behind its log.
    InstallSnapshot {
        /// Leader's term.
        term: u64,
        /// So followers can redirect clients.
        leader_id: NodeId,
        /// The whole snapshot (sent in one piece).
        snapshot: Snapshot,
    },
    /// A would-be candidate asks whether the receiver would vote for it in `term` (thesis
    /// §9.6). Nobody changes its term or vote for it: `term` is the prospective term, one
    /// past the sender's current term.
    PreVote {
        /// The term the sender would campaign in (its current term + 1).
        term: u64,
        /// The would-be candidate.
        candidate_id: NodeId,
        /// Index of its last log entry.
        last_log_index: u64,
        /// Term of its last log entry.
        last_log_term: u64,
    },
    /// Answer to `PreVote`.
    PreVoteReply {
        /// The replier's current term (newer than the request's only when refused for it).
        term: u64,
        /// The prospective term of the PreVote this answers.
        request_term: u64,
        /// True if the replier would vote for the sender in `request_term`.
        vote_granted: bool,
    },
    /// Leader asks a follower to confirm that it still leads `term`, for the ReadIndex
    /// reads of thesis §6.4. It carries no log information.
    LeadershipCheck {
        /// Leader's term.
        term: u64,
        /// The leader.
        leader_id: NodeId,
        /// The leader's read round this belongs to (rounds grow within a term).
        read_seq: u64,
    },
    /// Answer to `LeadershipCheck`: the replier is in the leader's term (else `term` is
    /// newer and the leader steps down).
    LeadershipCheckReply {
        /// Replier's current term.
        term: u64,
        /// Term of the check this answers.
        request_term: u64,
        /// The read round of the check this answers.
        read_seq: u64,
    },
    /// Answer to `InstallSnapshot`.
    InstallSnapshotReply {
        /// Follower's current term.
        term: u64,
        /// Term of the InstallSnapshot this answers (a leader ignores answers
        /// to requests of an earlier term).
        request_term: u64,
        /// Index of the snapshot this answers.
        last_included_index: u64,
        /// The follower's log now matches the leader's through this index:
        /// `last_included_index` if it accepted the snapshot (installed it,
        /// or had already committed past it), 0 if it rejected it.
        match_index: u64,
    },
}

impl<C: Command> Message<C> {
    /// The sender's term.
    pub fn term(&self) -> u64 {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteReply { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesReply { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotReply { term, .. }
            | Message::PreVote { term, .. }
            | Message::PreVoteReply { term, .. }
            | Message::LeadershipCheck { term, .. }
            | Message::LeadershipCheckReply { term, .. } => *term,
        }
    }

    /// For a reply, the term of the request it answers; None for requests.
    pub fn request_term(&self) -> Option<u64> {
        match self {
            Message::RequestVoteReply { request_term, .. }
            | Message::AppendEntriesReply { request_term, .. }
            | Message::InstallSnapshotReply { request_term, .. }
            | Message::PreVoteReply { request_term, .. }
            | Message::LeadershipCheckReply { request_term, .. } => Some(*request_term),
            Message::RequestVote { .. }
            | Message::AppendEntries { .. }
            | Message::InstallSnapshot { .. }
            | Message::PreVote { .. }
            | Message::LeadershipCheck { .. } => None,
        }
    }

    /// True for replies (the network model may drop or delay replies separately).
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Message::RequestVoteReply { .. }
                | Message::AppendEntriesReply { .. }
                | Message::InstallSnapshotReply { .. }
                | Message::PreVoteReply { .. }
                | Message::LeadershipCheckReply { .. }
        )
    }

    /// The term a receiver must adopt if it is newer than its own: the sender's current
    /// term, for every message but a PreVote, whose term is only prospective.
    pub fn sender_term(&self) -> Option<u64> {
        match self {
            Message::PreVote { .. } => None,
            _ => Some(self.term()),
        }
    }

    /// The variant name, for statistics and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::RequestVote { .. } => "RequestVote",
            Message::RequestVoteReply { .. } => "RequestVoteReply",
            Message::AppendEntries { .. } => "AppendEntries",
            Message::AppendEntriesReply { .. } => "AppendEntriesReply",
            Message::InstallSnapshot { .. } => "InstallSnapshot",
            Message::InstallSnapshotReply { .. } => "InstallSnapshotReply",
            Message::PreVote { .. } => "PreVote",
            Message::PreVoteReply { .. } => "PreVoteReply",
            Message::LeadershipCheck { .. } => "LeadershipCheck",
            Message::LeadershipCheckReply { .. } => "LeadershipCheckReply",
        }
    }

    /// Approximate encoded size in bytes, including commands and snapshot data.
    pub fn size_bytes(&self) -> usize {
        HEADER_BYTES
            + match self {
                Message::AppendEntries { entries, .. } => {
                    entries.iter().map(Entry::size_bytes).sum::<usize>()
                }
                Message::InstallSnapshot { snapshot, .. } => 16 + snapshot.data.len(),
                _ => 0,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let ae: Message<u64> = Message::AppendEntries {
            term: 4,
            leader_id: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![Entry {
                index: 1,
                term: 4,
                command: 7,
            }],
            leader_commit: 0,
        };
        assert_eq!(ae.term(), 4);
        assert!(!ae.is_reply());
        assert_eq!(ae.kind(), "AppendEntries");
        assert_eq!(ae.size_bytes(), HEADER_BYTES + 16 + 8);
        assert_eq!(ae.request_term(), None);
        let r: Message<u64> = Message::InstallSnapshotReply {
            term: 3,
            request_term: 2,
            last_included_index: 5,
            match_index: 5,
        };
        assert!(r.is_reply());
        assert_eq!((r.term(), r.request_term()), (3, Some(2)));
        assert_eq!(r.kind(), "InstallSnapshotReply");
        let s: Message<Vec<u8>> = Message::InstallSnapshot {
            term: 1,
            leader_id: 0,
            snapshot: Snapshot {
                last_included_index: 1,
                last_included_term: 1,
                data: vec![0; 100].into(),
            },
        };
        assert_eq!(s.size_bytes(), HEADER_BYTES + 116);
    }
}
