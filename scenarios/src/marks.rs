//! The marks the Raft and KV adapters report: a small vocabulary of abstract protocol events
//! ("sometimes" events) that coverage counts and reactive faults strike on. Scenario files
//! name them in `faults.swarm.reactive.rules[].mark`.
//!
//! Raft: `leader` (won an election), `candidate` (started one), `follower` (turned follower
//! from candidate or leader), `vote` (granted its vote to another server), `append` (a leader
//! appended a new entry to its log), `replicate` (a follower appended entries from a leader),
//! `truncate` (a follower deleted a conflicting suffix; context: how deep, bucketed),
//! `commit` (the commit index grew), `snapshot` (the log was compacted), `install` (a snapshot
//! from the leader was restored). Rarer events, for coverage: `term-jump` (a server's term
//! grew by more than one; context: by how much, bucketed), `vote-denied-log` (a vote refused by
//! the election restriction alone), `stale-reply` (a reply to a request of an earlier term
//! arrived), `commit-old-entries` (a leader committed entries of earlier terms through one of
//! its own), `stepdown-uncommitted` (a leader stepped down with entries not known committed;
//! context: how many, bucketed), `install-lagging` and `install-divergent` (a follower
//! installed a snapshot past its log's end, or over a log that disagreed with it).
//! KV: `kv-apply` (a command was applied), `kv-duplicate` (an applied command was a duplicate),
//! `kv-restore` (the service restored a snapshot; context 1 if it held a duplicate table),
//! `kv-snapshot` (the service took one), `kv-lost-pending` (a server that lost leadership
//! failed requests it had proposed).

use raft::{Event, Message, Raft, Role, StorageOp};
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
    "term-jump",
    "vote-denied-log",
    "stale-reply",
    "commit-old-entries",
    "stepdown-uncommitted",
    "install-lagging",
    "install-divergent",
    "kv-apply",
    "kv-duplicate",
    "kv-restore",
    "kv-snapshot",
    "kv-lost-pending",
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

/// The mark of a durable write of a server that is (or is not) leader and whose log ended
/// at `last_index` before the call, with its context; none for term and vote (the vote has
/// its own mark, see [`RaftWatch`]).
pub fn storage_mark<C>(
    op: &StorageOp<C>,
    leader: bool,
    last_index: u64,
) -> Option<(&'static str, u32)> {
    match op {
        StorageOp::HardState { .. } => None,
        StorageOp::TruncateFrom { index } => {
            Some(("truncate", bucket((last_index + 1).saturating_sub(*index))))
        }
        StorageOp::Append { .. } if leader => Some(("append", 0)),
        StorageOp::Append { .. } => Some(("replicate", 0)),
        StorageOp::Snapshot { .. } => Some(("snapshot", 0)),
    }
}

/// A count as a small context: 0 for 0 or 1, then 1 for 2-3, 2 for 4-15, 3 for 16 and more.
pub fn bucket(n: u64) -> u32 {
    match n {
        0..=1 => 0,
        2..=3 => 1,
        4..=15 => 2,
        _ => 3,
    }
}

/// What a server's Raft state was before one call, and what the incoming message (if any)
/// said, to mark what the call changed.
#[derive(Clone, Copy, Debug)]
pub struct RaftWatch {
    term: u64,
    voted_for: Option<NodeId>,
    leader: bool,
    last_index: u64,
    commit_index: u64,
    msg: Incoming,
}

/// The facts of an incoming message the marks need (copied, so the message need not be).
#[derive(Clone, Copy, Debug)]
enum Incoming {
    None,
    /// A RequestVote: its term, candidate and last log entry.
    Vote {
        term: u64,
        candidate: NodeId,
        last_log_index: u64,
        last_log_term: u64,
    },
    /// A reply to a request of an earlier term than ours.
    StaleReply,
    /// An InstallSnapshot through `index`, when our log was behind it or disagreed with it.
    Install {
        index: u64,
        lagging: bool,
    },
    Other,
}

impl RaftWatch {
    /// Remembers `raft`'s state before it handles `msg` (if any).
    pub fn before<C: raft::Command>(raft: &Raft<C>, msg: Option<&Message<C>>) -> Self {
        let msg = match msg {
            None => Incoming::None,
            Some(Message::RequestVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            }) => Incoming::Vote {
                term: *term,
                candidate: *candidate_id,
                last_log_index: *last_log_index,
                last_log_term: *last_log_term,
            },
            Some(m) if m.request_term().is_some_and(|t| t < raft.current_term()) => {
                Incoming::StaleReply
            }
            Some(Message::InstallSnapshot { snapshot, .. }) => {
                let index = snapshot.last_included_index;
                if raft.last_index() < index {
                    Incoming::Install {
                        index,
                        lagging: true,
                    }
                } else if raft.term_at(index) != Some(snapshot.last_included_term) {
                    Incoming::Install {
                        index,
                        lagging: false,
                    }
                } else {
                    Incoming::Other
                }
            }
            Some(_) => Incoming::Other,
        };
        RaftWatch {
            term: raft.current_term(),
            voted_for: raft.voted_for(),
            leader: raft.role() == Role::Leader,
            last_index: raft.last_index(),
            commit_index: raft.commit_index(),
            msg,
        }
    }

    /// Marks what the call changed in `raft`.
    pub fn after<N: Node, C: raft::Command>(self, ctx: &mut Ctx<'_, N>, raft: &Raft<C>) {
        let me = raft.id();
        let (term, voted_for) = (raft.current_term(), raft.voted_for());
        if voted_for.is_some_and(|v| v != me) && (term, voted_for) != (self.term, self.voted_for) {
            ctx.mark("vote");
        }
        if term > self.term + 1 {
            ctx.mark_with("term-jump", bucket(term - self.term));
        }
        match self.msg {
            Incoming::Vote {
                term: t,
                candidate,
                last_log_index,
                last_log_term,
            } if t == term
                && voted_for != Some(candidate)
                && !raft.log().is_up_to_date(last_log_index, last_log_term) =>
            {
                ctx.mark("vote-denied-log");
            }
            Incoming::StaleReply => ctx.mark("stale-reply"),
            Incoming::Install { index, lagging } if raft.snapshot_index() == index => {
                ctx.mark(if lagging {
                    "install-lagging"
                } else {
                    "install-divergent"
                });
            }
            _ => {}
        }
        let leader = raft.role() == Role::Leader;
        if self.leader && !leader && self.last_index > self.commit_index {
            ctx.mark_with(
                "stepdown-uncommitted",
                bucket(self.last_index - self.commit_index),
            );
        }
        if leader && raft.commit_index() > self.commit_index {
            let old = (self.commit_index + 1..=raft.commit_index())
                .any(|i| raft.term_at(i).is_some_and(|t| t < term));
            if old {
                ctx.mark("commit-old-entries");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::run_scenario;
    use crate::scenario::Scenario;
    use std::collections::BTreeSet;

    fn reached(file: &str, seeds: std::ops::RangeInclusive<u64>) -> BTreeSet<&'static str> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(file);
        let sc = Scenario::load(&path).unwrap();
        let mut seen = BTreeSet::new();
        for seed in seeds {
            let r = run_scenario(&sc, seed, file, None).unwrap().result;
            seen.extend(r.marks.iter().map(|(m, _)| m.name));
        }
        seen
    }

    #[test]
    fn the_swarm_profiles_reach_every_mark_of_the_vocabulary() {
        let mut seen = reached("scenarios/fuzz/raft-swarm.json", 1..=10);
        seen.extend(reached("scenarios/fuzz/kv-swarm-snapshots.json", 1..=2));
        let missing: Vec<&&str> = MARKS.iter().filter(|m| !seen.contains(*m)).collect();
        assert!(missing.is_empty(), "never reported: {missing:?}");
        let unknown: Vec<&&str> = seen.iter().filter(|m| !MARKS.contains(m)).collect();
        assert!(unknown.is_empty(), "reported but not in MARKS: {unknown:?}");
    }

    #[test]
    fn buckets_grow_by_powers() {
        let b: Vec<u32> = [0, 1, 2, 3, 4, 15, 16, 1000]
            .iter()
            .map(|&n| bucket(n))
            .collect();
        assert_eq!(b, vec![0, 0, 1, 1, 2, 2, 3, 3]);
    }
}
