//! Messages between clerks and servers, and what servers report.

use serde::{Deserialize, Serialize};

use crate::command::{ClientId, KvCommand, Op};

/// Fixed per-message overhead charged for client traffic.
const HEADER_BYTES: usize = 24;

/// Clerk → server: please execute `op` as request `seq` of `client`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The issuing clerk.
    pub client: ClientId,
    /// The clerk's request number; a retry re-sends the same number.
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

/// Server → clerk. Invariant: `Ok` is only sent once request `seq` was
/// executed (or found in the duplicate table); `value` is `Some` exactly for a `Get`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The request executed; `value` is the `Get` result (`""` for a missing key).
    Ok {
        /// The request answered.
        seq: u64,
        /// `Some` for `Get`, `None` for `Put`/`Append`.
        value: Option<String>,
    },
    /// This server is not (or no longer) the leader: try another one.
    WrongLeader {
        /// The request answered.
        seq: u64,
        /// The leader this server believes in, if any.
        leader_hint: Option<usize>,
    },
}

impl ClientReply {
    /// The request number the reply answers.
    pub fn seq(&self) -> u64 {
        match self {
            ClientReply::Ok { seq, .. } | ClientReply::WrongLeader { seq, .. } => *seq,
        }
    }
}

/// Everything on the simulated network between servers and clerks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvMessage {
    /// Server ↔ server Raft traffic.
    Raft(raft::Message<KvCommand>),
    /// Clerk → server.
    Request(ClientRequest),
    /// Server → clerk.
    Reply(ClientReply),
}

impl KvMessage {
    /// A short name for statistics and filters: `"Raft:AppendEntries"`, `"Request"`, `"Reply"`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            KvMessage::Raft(m) => match m {
                raft::Message::RequestVote { .. } => "Raft:RequestVote",
                raft::Message::RequestVoteReply { .. } => "Raft:RequestVoteReply",
                raft::Message::AppendEntries { .. } => "Raft:AppendEntries",
                raft::Message::AppendEntriesReply { .. } => "Raft:AppendEntriesReply",
                raft::Message::InstallSnapshot { .. } => "Raft:InstallSnapshot",
                raft::Message::InstallSnapshotReply { .. } => "Raft:InstallSnapshotReply",
                raft::Message::PreVote { .. } => "Raft:PreVote",
                raft::Message::PreVoteReply { .. } => "Raft:PreVoteReply",
                raft::Message::LeadershipCheck { .. } => "Raft:LeadershipCheck",
                raft::Message::LeadershipCheckReply { .. } => "Raft:LeadershipCheckReply",
            },
            KvMessage::Request(_) => "Request",
            KvMessage::Reply(_) => "Reply",
        }
    }

    /// True for client replies and Raft replies.
    pub fn is_reply(&self) -> bool {
        match self {
            KvMessage::Raft(m) => m.is_reply(),
            KvMessage::Request(_) => false,
            KvMessage::Reply(_) => true,
        }
    }

    /// Approximate encoded size in bytes.
    pub fn size_bytes(&self) -> usize {
        match self {
            KvMessage::Raft(m) => m.size_bytes(),
            KvMessage::Request(r) => HEADER_BYTES + 16 + r.op.payload_bytes(),
            KvMessage::Reply(ClientReply::Ok { value, .. }) => {
                HEADER_BYTES + 8 + value.as_ref().map_or(0, String::len)
            }
            KvMessage::Reply(ClientReply::WrongLeader { .. }) => HEADER_BYTES + 16,
        }
    }
}

/// Server observations for checkers and traces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerEvent {
    /// Something the Raft node reported.
    Raft(raft::Event),
    /// The entry at `index` was applied (in log order on each server);
    /// `duplicate` means a `Put`/`Append` was skipped, or a `Get` re-read,
    /// because the client's request had already executed.
    Applied {
        /// Log index.
        index: u64,
        /// Term of the log entry.
        term: u64,
        /// The issuing clerk.
        client: ClientId,
        /// The clerk's request number.
        seq: u64,
        /// The operation.
        op: Op,
        /// True if the request had already executed before.
        duplicate: bool,
        /// Digest of the service state after applying (`KvServer::state_digest`).
        state: u64,
    },
    /// The server handed Raft a snapshot covering entries through `index`.
    SnapshotTaken {
        /// Last index covered.
        index: u64,
        /// Encoded size.
        bytes: usize,
    },
    /// The server replaced its state with a snapshot through `index`.
    SnapshotRestored {
        /// Last index covered.
        index: u64,
        /// Term of the last entry covered.
        term: u64,
        /// Digest of the restored service state.
        state: u64,
    },
}

/// Everything one call into a [`KvServer`](crate::KvServer) produced. Handle in
/// order: apply `storage` to durable storage, then send `messages`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReady {
    /// Durable writes, to apply before sending any message.
    pub storage: Vec<raft::StorageOp<KvCommand>>,
    /// (destination node, message): Raft peers and clerks.
    pub messages: Vec<(usize, KvMessage)>,
    /// Observations.
    pub events: Vec<ServerEvent>,
    /// For each of `events`, how many of `storage` were written before it: the two lists
    /// merged in the order things happened.
    pub stored_before: Vec<usize>,
}

impl ServerReady {
    /// True if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.storage.is_empty() && self.messages.is_empty() && self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_sizes() {
        let req = KvMessage::Request(ClientRequest {
            client: 3,
            seq: 1,
            op: Op::put("k", "vv"),
        });
        assert_eq!(
            (req.kind(), req.is_reply(), req.size_bytes()),
            ("Request", false, 43)
        );
        let rep = KvMessage::Reply(ClientReply::Ok {
            seq: 1,
            value: Some("abc".into()),
        });
        assert_eq!(
            (rep.kind(), rep.is_reply(), rep.size_bytes()),
            ("Reply", true, 35)
        );
        let vote = KvMessage::Raft(raft::Message::RequestVoteReply {
            term: 1,
            request_term: 1,
            vote_granted: true,
        });
        assert_eq!(vote.kind(), "Raft:RequestVoteReply");
        assert!(vote.is_reply());
        let json = serde_json::to_string(&rep).unwrap();
        assert_eq!(json, r#"{"Reply":{"Ok":{"seq":1,"value":"abc"}}}"#);
        // A refusal carries a seq and a hint: header + 16, whatever the hint.
        for leader_hint in [None, Some(2)] {
            let no = KvMessage::Reply(ClientReply::WrongLeader {
                seq: 9,
                leader_hint,
            });
            assert_eq!(
                (no.kind(), no.is_reply(), no.size_bytes()),
                ("Reply", true, 40)
            );
        }
    }

    #[test]
    fn a_ready_is_empty_only_without_storage_messages_and_events() {
        assert!(ServerReady::default().is_empty());
        let storage = ServerReady {
            storage: vec![raft::StorageOp::TruncateFrom { index: 3 }],
            ..ServerReady::default()
        };
        let messages = ServerReady {
            messages: vec![(
                1,
                KvMessage::Reply(ClientReply::Ok {
                    seq: 1,
                    value: None,
                }),
            )],
            ..ServerReady::default()
        };
        let events = ServerReady {
            events: vec![ServerEvent::SnapshotTaken {
                index: 4,
                bytes: 10,
            }],
            stored_before: vec![0],
            ..ServerReady::default()
        };
        for r in [storage, messages, events] {
            assert!(!r.is_empty(), "{r:?}");
        }
    }
}
