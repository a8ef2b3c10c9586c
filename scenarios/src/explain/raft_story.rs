//! The stories accounts tell: one entry's (who appended, replicated, committed, applied and
//! deleted it) and one election's (the candidacy, the votes with each voter's log, the win).

use super::index::{observations, sends, Index};
use super::parse::{raft_msg, u, vote_reply};
use super::raft_read::{log_change, role, Held, Logs};
use super::{at, Candidate};
use crate::raft::node::LogChange;
use sim::trace::{Record, StepInput};
use sim::NodeId;
use std::collections::BTreeMap;

/// What the trace tells about one entry `(index, term, entry)` (`term` `None`: any term).
pub(super) struct EntryStory {
    pub(super) index: u64,
    pub(super) term: Option<u64>,
    pub(super) entry: u64,
    /// The first step that appended it, and whether that server led then (its own append).
    pub(super) first: Option<(usize, NodeId, bool)>,
    pub(super) holders: Vec<(NodeId, usize)>,
    pub(super) lost: Vec<(NodeId, usize)>,
    pub(super) committed: Vec<(NodeId, usize)>,
    pub(super) applied: Vec<(NodeId, usize)>,
}

impl EntryStory {
    pub(super) fn new(ix: &Index, index: u64, term: Option<u64>, entry: u64) -> Self {
        let mut s = EntryStory {
            index,
            term,
            entry,
            first: None,
            holders: vec![],
            lost: vec![],
            committed: vec![],
            applied: vec![],
        };
        let matches = |h: Option<(u64, u64)>| {
            h.is_some_and(|(t, e)| e == entry && term.is_none_or(|x| x == t))
        };
        let mut logs = Logs::default();
        let mut commit: BTreeMap<NodeId, u64> = BTreeMap::new();
        let mut leading: BTreeMap<NodeId, bool> = BTreeMap::new();
        for (pos, _, _, node, out) in ix.steps() {
            for obs in observations(out) {
                if let Some(b) = obs.get("boot") {
                    commit.insert(node, u(b, "commit_index").unwrap_or(0));
                    leading.insert(node, false);
                } else if let Some((r, _)) = role(obs) {
                    leading.insert(node, r == "leader");
                } else if let Some(change) = log_change(obs) {
                    let had = matches(logs.held(node, index));
                    logs.apply(node, &change);
                    let has = matches(logs.held(node, index));
                    let gone = matches!(change, LogChange::Truncate { .. });
                    if has && !had {
                        if s.term.is_none() {
                            s.term = logs.held(node, index).map(|h| h.0);
                        }
                        if s.first.is_none() {
                            let own = leading.get(&node).copied().unwrap_or(false);
                            s.first = Some((pos, node, own));
                        }
                        s.holders.push((node, pos));
                    } else if had && !has && gone {
                        s.lost.push((node, pos));
                    }
                } else if let Some(c) = obs.get("commit") {
                    let ci = u(c, "commit_index").unwrap_or(0);
                    let from = commit.insert(node, ci).unwrap_or(0);
                    if from < index && index <= ci && matches(logs.held(node, index)) {
                        s.committed.push((node, pos));
                    }
                } else if let Some(a) = obs.get("applied") {
                    let same_term = term.is_none_or(|t| u(a, "term") == Some(t));
                    let same_entry = u(a, "value").is_none_or(|v| v == entry);
                    if u(a, "index") == Some(index) && same_term && same_entry {
                        s.applied.push((node, pos));
                    }
                }
            }
        }
        s
    }

    pub(super) fn label(&self) -> String {
        match self.term {
            Some(t) => format!("entry {} (term {t}, {:#x})", self.index, self.entry),
            None => format!("entry {} ({:#x})", self.index, self.entry),
        }
    }

    /// One line: who appended, held, committed, applied and lost the entry.
    pub(super) fn fact(&self, ix: &Index) -> String {
        let who = |v: &[(NodeId, usize)]| {
            let mut seen: Vec<NodeId> = vec![];
            let mut parts = vec![];
            for &(n, pos) in v {
                if !seen.contains(&n) {
                    seen.push(n);
                    parts.push(format!("{} (n={})", ix.name(n), ix.when(pos).0));
                }
            }
            parts.join(", ")
        };
        let mut s = self.label();
        match self.first {
            Some((pos, node, true)) => s.push_str(&format!(
                ": appended by {} as leader at {}",
                ix.name(node),
                at(ix, pos)
            )),
            Some((pos, node, false)) => s.push_str(&format!(
                ": first appended by {} at {}",
                ix.name(node),
                at(ix, pos)
            )),
            None => s.push_str(": appended by no server in the trace"),
        }
        let others: Vec<(NodeId, usize)> = self.holders.iter().skip(1).copied().collect();
        if !others.is_empty() {
            s.push_str(&format!("; replicated to {}", who(&others)));
        }
        if self.committed.is_empty() {
            s.push_str("; committed by none");
        } else {
            s.push_str(&format!("; committed by {}", who(&self.committed)));
        }
        if !self.applied.is_empty() {
            s.push_str(&format!("; applied by {}", who(&self.applied)));
        }
        if !self.lost.is_empty() {
            s.push_str(&format!("; deleted by {}", who(&self.lost)));
        }
        s
    }

    pub(super) fn candidates(&self, into: &mut Vec<Candidate>) {
        let l = self.label();
        if let Some((pos, _, own)) = self.first {
            let how = if own { "as leader" } else { "first" };
            into.push(Candidate {
                prio: 0,
                pos,
                what: format!("appends {l} {how}"),
            });
        }
        for &(_, pos) in self.holders.iter().skip(1) {
            into.push(Candidate {
                prio: 2,
                pos,
                what: format!("appends {l}"),
            });
        }
        for (i, &(_, pos)) in self.committed.iter().enumerate() {
            let prio = if i == 0 { 0 } else { 2 };
            into.push(Candidate {
                prio,
                pos,
                what: format!("commits {l}"),
            });
        }
        if let Some(&(_, pos)) = self.applied.first() {
            into.push(Candidate {
                prio: 1,
                pos,
                what: format!("applies {l}"),
            });
        }
        for &(_, pos) in &self.lost {
            into.push(Candidate {
                prio: 1,
                pos,
                what: format!("deletes {l}"),
            });
        }
    }

    /// The anchors: the first append and the first commit.
    pub(super) fn anchors(&self) -> Vec<usize> {
        self.first
            .map(|f| f.0)
            .into_iter()
            .chain(self.committed.first().map(|c| c.1))
            .collect()
    }
}

/// A vote granted to a candidate: the voter, its step, the reply's message id, the voter's
/// last log `(index, term)` then, the candidate's as its RequestVote said, and what the voter
/// held at the index an account asks about.
pub(super) struct Vote {
    pub(super) voter: NodeId,
    pub(super) pos: usize,
    pub(super) id: u64,
    pub(super) voter_last: (u64, u64),
    pub(super) cand_last: Option<(u64, u64)>,
    pub(super) held: Held,
}

/// How `leader` won `term`: its candidacy, the votes granted to it, and the step it became
/// leader in (the last one at or before `until`).
pub(super) struct Election {
    pub(super) leader: NodeId,
    pub(super) term: u64,
    pub(super) candidate: Option<usize>,
    pub(super) elected: Option<usize>,
    pub(super) votes: Vec<Vote>,
}

impl Election {
    pub(super) fn new(ix: &Index, leader: NodeId, term: u64, until: usize, index: u64) -> Self {
        let mut e = Election {
            leader,
            term,
            candidate: None,
            elected: None,
            votes: vec![],
        };
        let mut logs = Logs::default();
        for (pos, _, _, node, out) in ix.steps() {
            if pos > until {
                break;
            }
            if node == leader {
                for obs in observations(out) {
                    match role(obs) {
                        Some(("candidate", t)) if t == term => e.candidate = Some(pos),
                        Some(("leader", t)) if t == term => e.elected = Some(pos),
                        _ => {}
                    }
                }
            }
            for (id, to, msg, _) in sends(out) {
                let Some(("RequestVoteReply", body)) = raft_msg(msg) else {
                    continue;
                };
                if to == leader && vote_reply(body) == Some((term, true)) {
                    let cand_last = match ix.rec(pos) {
                        Record::Step {
                            input: StepInput::Deliver { msg, .. },
                            ..
                        } => raft_msg(msg).and_then(|(_, b)| {
                            Some((u(b, "last_log_index")?, u(b, "last_log_term")?))
                        }),
                        _ => None,
                    };
                    e.votes.push(Vote {
                        voter: node,
                        pos,
                        id,
                        voter_last: logs.last(node),
                        cand_last,
                        held: logs.holds(node, index),
                    });
                }
            }
            for c in observations(out).filter_map(log_change) {
                logs.apply(node, &c);
            }
        }
        e
    }

    pub(super) fn fact(&self, ix: &Index) -> String {
        let l = ix.name(self.leader);
        let mut voters: Vec<NodeId> = vec![];
        let mut parts: Vec<String> = vec![];
        for v in &self.votes {
            if voters.contains(&v.voter) {
                continue; // a duplicated request answered again
            }
            voters.push(v.voter);
            parts.push(format!(
                "{} (n={}, message {})",
                ix.name(v.voter),
                ix.when(v.pos).0,
                v.id
            ));
        }
        let when = self.elected.map_or("?".to_string(), |p| at(ix, p));
        format!(
            "{l} became leader of term {} at {when} with its own vote and those of {}",
            self.term,
            if parts.is_empty() {
                "nobody".into()
            } else {
                parts.join(", ")
            }
        )
    }

    pub(super) fn candidates(&self, ix: &Index, prio_votes: u8, into: &mut Vec<Candidate>) {
        let (l, t) = (ix.name(self.leader), self.term);
        if let Some(pos) = self.candidate {
            into.push(Candidate {
                prio: 1,
                pos,
                what: format!("{l} campaigns in term {t}"),
            });
        }
        if let Some(pos) = self.elected {
            into.push(Candidate {
                prio: 0,
                pos,
                what: format!("{l} becomes leader of term {t}"),
            });
        }
        for v in &self.votes {
            into.push(Candidate {
                prio: prio_votes,
                pos: v.pos,
                what: format!(
                    "{} grants its term-{t} vote to {l} (message {})",
                    ix.name(v.voter),
                    v.id
                ),
            });
        }
    }
}
