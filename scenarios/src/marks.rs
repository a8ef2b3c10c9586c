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

/// The mark of a Raft role or commit event of `raft`, with its context: for `leader`, how
/// many entries the new leader holds beyond its commit index; for `candidate`, how many terms
/// have passed since the term of its last entry (elections without progress), bucketed.
pub fn event_mark<C: raft::Command>(e: &Event, raft: &Raft<C>) -> (&'static str, u32) {
    match e {
        Event::BecameLeader { .. } => (
            "leader",
            bucket(raft.last_index().saturating_sub(raft.commit_index())),
        ),
        Event::BecameCandidate { term } => {
            ("candidate", bucket(term.saturating_sub(raft.last_term())))
        }
        Event::BecameFollower { .. } => ("follower", 0),
        Event::CommitAdvanced { .. } => ("commit", 0),
    }
}

/// The mark of a durable write of a server that is (or is not) leader and whose log ended
/// at `last_index` before the call, with its context; none for term and vote (the vote has
/// its own mark, see [`RaftWatch`]). Contexts: `truncate`, how deep; `append`, how many
/// entries the leader holds beyond its commit index (`in_flight`); `replicate`, how many
/// entries came at once; bucketed.
pub fn storage_mark<C>(
    op: &StorageOp<C>,
    leader: bool,
    last_index: u64,
    in_flight: u64,
) -> Option<(&'static str, u32)> {
    match op {
        StorageOp::HardState { .. } => None,
        StorageOp::TruncateFrom { index } => {
            Some(("truncate", bucket((last_index + 1).saturating_sub(*index))))
        }
        StorageOp::Append { .. } if leader => Some(("append", bucket(in_flight))),
        StorageOp::Append { entries } => Some(("replicate", bucket(entries.len() as u64))),
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
    /// A reply to a request of an earlier term than ours: 0 a vote, 1 an append, 2 a snapshot.
    StaleReply(u32),
    /// An InstallSnapshot through `index`, when our log was `behind` it (by that many
    /// entries) or disagreed with it (`behind` 0).
    Install {
        index: u64,
        behind: u64,
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
                Incoming::StaleReply(match m {
                    Message::RequestVoteReply { .. } => 0,
                    Message::AppendEntriesReply { .. } => 1,
                    _ => 2,
                })
            }
            Some(Message::InstallSnapshot { snapshot, .. }) => {
                let index = snapshot.last_included_index;
                if raft.last_index() < index {
                    Incoming::Install {
                        index,
                        behind: index - raft.last_index(),
                    }
                } else if raft.term_at(index) != Some(snapshot.last_included_term) {
                    Incoming::Install { index, behind: 0 }
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
            // Context: the candidate's log against the voter's: 0 the same end, 1 longer in
            // the same last term, 2 a newer last term.
            let context = match self.msg {
                Incoming::Vote { last_log_term, .. } if last_log_term > raft.last_term() => 2,
                Incoming::Vote { last_log_index, .. } => {
                    u32::from(last_log_index > raft.last_index())
                }
                _ => 0,
            };
            ctx.mark_with("vote", context);
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
            Incoming::StaleReply(kind) => ctx.mark_with("stale-reply", kind),
            Incoming::Install { index, behind } if raft.snapshot_index() == index => {
                if behind > 0 {
                    ctx.mark_with("install-lagging", bucket(behind));
                } else {
                    ctx.mark("install-divergent");
                }
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
                .filter(|&i| raft.term_at(i).is_some_and(|t| t < term))
                .count() as u64;
            if old > 0 {
                ctx.mark_with("commit-old-entries", bucket(old));
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
            seen.extend(r.marks.iter().map(|s| s.mark.name));
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
