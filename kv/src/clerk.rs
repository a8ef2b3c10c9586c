//! The client side: one operation at a time, retried until some leader
//! executes it.

use serde::{Deserialize, Serialize};

use crate::bugs::{Bug, Bugs};
use crate::command::{ClientId, Op};
use crate::messages::{ClientReply, ClientRequest, KvMessage};

/// What one call into a [`Clerk`] produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClerkReady {
    /// Requests to send, as (server node, message).
    pub messages: Vec<(usize, KvMessage)>,
    /// Absolute virtual time at which to call `on_timeout`; `None` = no change.
    pub timer: Option<u64>,
    /// The operation that completed: its seq and, for a `Get`, the value.
    pub completed: Option<(u64, Option<String>)>,
}

impl ClerkReady {
    /// True if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.timer.is_none() && self.completed.is_none()
    }
}

/// The operation in progress.
#[derive(Clone, Debug)]
struct Outstanding {
    /// The operation's number, as `invoke` returned it and `completed` reports it.
    seq: u64,
    /// The number its requests carry and its replies must carry: `seq` (a retry re-sends
    /// the same number), but for the `NewSeqOnRetry` bug.
    request_seq: u64,
    op: Op,
    /// Position in `servers` of the server last asked.
    target: usize,
    /// When to give up on `target` and try the next server.
    deadline: u64,
}

/// One client. Invariants: at most one operation is outstanding; seqs are
/// 1, 2, 3, ... in invocation order and a retry re-sends the same seq;
/// `leader < servers.len()`.
#[derive(Clone, Debug)]
pub struct Clerk {
    id: ClientId,
    servers: Vec<usize>,
    retry_timeout: u64,
    /// Position in `servers` of the last known leader (tried first).
    leader: usize,
    next_seq: u64,
    outstanding: Option<Outstanding>,
    /// Deliberate bugs (none by default).
    bugs: Bugs,
    ready: ClerkReady,
}

impl Clerk {
    /// `servers`: node ids of the servers (non-empty). `retry_timeout`: µs the
    /// clerk waits for a reply before trying the next server.
    pub fn new(id: ClientId, servers: Vec<usize>, retry_timeout: u64) -> Self {
        assert!(!servers.is_empty(), "a clerk needs servers");
        assert!(retry_timeout > 0, "retry_timeout must be > 0");
        Clerk {
            id,
            servers,
            retry_timeout,
            leader: 0,
            next_seq: 1,
            outstanding: None,
            bugs: Bugs::NONE,
            ready: ClerkReady::default(),
        }
    }

    /// Switch on deliberate bugs (`Bugs::NONE`, the default, is the correct clerk).
    pub fn set_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
    }

    /// This clerk's client id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Start an operation (panics if one is outstanding). Returns its seq.
    pub fn invoke(&mut self, now: u64, op: Op) -> u64 {
        assert!(self.outstanding.is_none(), "clerk {} is busy", self.id);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding = Some(Outstanding {
            seq,
            request_seq: seq,
            op,
            target: self.leader,
            deadline: 0,
        });
        self.send(now);
        seq
    }

    /// A server answered. Replies for another seq, or while idle, are ignored;
    /// so is a `WrongLeader` from a server other than the one last asked.
    pub fn handle_reply(&mut self, now: u64, from: usize, reply: ClientReply) {
        let Some(o) = &self.outstanding else { return };
        if reply.seq() != o.request_seq {
            // AcceptsStaleReply: an OK of the right kind is taken for this operation's.
            let same_kind =
                matches!(&reply, ClientReply::Ok { value, .. } if value.is_some() == o.op.is_get());
            if !(self.bugs.has(Bug::AcceptsStaleReply) && same_kind) {
                return;
            }
        }
        match reply {
            ClientReply::Ok { value, .. } => {
                debug_assert_eq!(value.is_some(), o.op.is_get(), "reply shape");
                if let Some(pos) = self.servers.iter().position(|s| *s == from) {
                    self.leader = pos;
                }
                self.ready.completed = Some((o.seq, value));
                self.outstanding = None;
            }
            ClientReply::WrongLeader { .. } => {
                if self.servers[o.target] != from {
                    return;
                }
                if self.bugs.has(Bug::ErrorAsEmptyValue) && o.op.is_get() {
                    // The error reply's (empty) value taken for the answer.
                    self.ready.completed = Some((o.seq, Some(String::new())));
                    self.outstanding = None;
                    return;
                }
                self.try_next(now);
            }
        }
    }

    /// The timer set through [`ClerkReady::timer`] fired. Early or stale calls
    /// (idle, or before the current deadline) are harmless.
    pub fn on_timeout(&mut self, now: u64) {
        match &self.outstanding {
            Some(o) if now >= o.deadline => self.try_next(now),
            Some(o) => self.ready.timer = Some(o.deadline),
            None => {}
        }
    }

    /// Drain everything produced since the last call.
    pub fn take_ready(&mut self) -> ClerkReady {
        std::mem::take(&mut self.ready)
    }

    /// True if an operation is outstanding.
    pub fn busy(&self) -> bool {
        self.outstanding.is_some()
    }

    /// The seq of the outstanding operation, if any.
    pub fn outstanding_seq(&self) -> Option<u64> {
        self.outstanding.as_ref().map(|o| o.seq)
    }

    /// Round robin: ask the next server.
    fn try_next(&mut self, now: u64) {
        let n = self.servers.len();
        if let Some(o) = &mut self.outstanding {
            o.target = (o.target + 1) % n;
            self.leader = o.target;
            if self.bugs.has(Bug::NewSeqOnRetry) {
                o.request_seq = self.next_seq;
                self.next_seq += 1;
            }
        }
        self.send(now);
    }

    /// (Re)send the outstanding request to its target and arm the timer.
    fn send(&mut self, now: u64) {
        let Some(o) = &mut self.outstanding else {
            return;
        };
        o.deadline = now.saturating_add(self.retry_timeout);
        let req = ClientRequest {
            client: self.id,
            seq: o.request_seq,
            op: o.op.clone(),
        };
        let to = self.servers[o.target];
        self.ready.messages.push((to, KvMessage::Request(req)));
        self.ready.timer = Some(o.deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(r: &ClerkReady) -> Vec<(usize, u64)> {
        r.messages
            .iter()
            .map(|(to, m)| match m {
                KvMessage::Request(q) => (*to, q.seq),
                other => panic!("clerk sent {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_ready_is_empty_only_without_messages_timer_and_completion() {
        assert!(ClerkReady::default().is_empty());
        let messages = ClerkReady {
            messages: vec![(
                0,
                KvMessage::Reply(ClientReply::Ok {
                    seq: 1,
                    value: None,
                }),
            )],
            ..ClerkReady::default()
        };
        let timer = ClerkReady {
            timer: Some(5),
            ..ClerkReady::default()
        };
        let completed = ClerkReady {
            completed: Some((1, None)),
            ..ClerkReady::default()
        };
        for r in [messages, timer, completed] {
            assert!(!r.is_empty(), "{r:?}");
        }
    }

    #[test]
    fn requests_carry_the_clerk_id_and_the_outstanding_seq() {
        let mut c = Clerk::new(7, vec![10], 1_000);
        assert_eq!((c.id(), c.outstanding_seq()), (7, None));
        for seq in 1..=3 {
            assert_eq!(c.invoke(0, Op::append("k", "v")), seq);
            assert_eq!(c.outstanding_seq(), Some(seq));
            let r = c.take_ready();
            match &r.messages[..] {
                [(10, KvMessage::Request(q))] => assert_eq!((q.client, q.seq), (7, seq)),
                other => panic!("sent {other:?}"),
            }
            c.handle_reply(1, 10, ClientReply::Ok { seq, value: None });
            assert_eq!(c.outstanding_seq(), None);
        }
    }

    #[test]
    fn retries_round_robin_and_remembers_the_leader() {
        let mut c = Clerk::new(7, vec![10, 11, 12], 1_000);
        let seq = c.invoke(0, Op::put("k", "v"));
        assert_eq!(seq, 1);
        let r = c.take_ready();
        assert_eq!((sent(&r), r.timer), (vec![(10, 1)], Some(1_000)));
        c.handle_reply(
            5,
            10,
            ClientReply::WrongLeader {
                seq: 1,
                leader_hint: None,
            },
        );
        assert_eq!(sent(&c.take_ready()), vec![(11, 1)]);
        // An early timer is re-armed, a due one moves on.
        c.on_timeout(500);
        assert_eq!(c.take_ready().timer, Some(1_005));
        c.on_timeout(1_005);
        assert_eq!(sent(&c.take_ready()), vec![(12, 1)]);
        c.on_timeout(3_000);
        assert_eq!(sent(&c.take_ready()), vec![(10, 1)]);
        // A stale WrongLeader (from a server asked earlier) is ignored.
        c.handle_reply(
            3_001,
            12,
            ClientReply::WrongLeader {
                seq: 1,
                leader_hint: None,
            },
        );
        assert!(c.take_ready().is_empty());
        // Ok from any server completes the op; that server becomes the leader.
        c.handle_reply(
            3_002,
            12,
            ClientReply::Ok {
                seq: 1,
                value: None,
            },
        );
        assert_eq!(c.take_ready().completed, Some((1, None)));
        assert!(!c.busy());
        // Replies while idle and timeouts while idle do nothing.
        c.handle_reply(
            3_003,
            10,
            ClientReply::Ok {
                seq: 1,
                value: None,
            },
        );
        c.on_timeout(9_999);
        assert!(c.take_ready().is_empty());
        assert_eq!(c.invoke(10_000, Op::get("k")), 2);
        assert_eq!(sent(&c.take_ready()), vec![(12, 2)]);
        // A late reply to seq 1 is ignored.
        c.handle_reply(
            10_001,
            12,
            ClientReply::Ok {
                seq: 1,
                value: None,
            },
        );
        assert!(c.busy());
        c.handle_reply(
            10_002,
            12,
            ClientReply::Ok {
                seq: 2,
                value: Some("v".into()),
            },
        );
        assert_eq!(c.take_ready().completed, Some((2, Some("v".into()))));
    }

    #[test]
    #[should_panic(expected = "busy")]
    fn one_operation_at_a_time() {
        let mut c = Clerk::new(1, vec![0], 10);
        c.invoke(0, Op::get("a"));
        c.invoke(1, Op::get("b"));
    }
}
