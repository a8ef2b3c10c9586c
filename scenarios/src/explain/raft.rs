//! Accounts of Raft safety violations (`raft/checks.rs`, `raft/durable.rs`): the conflicting
//! facts (two leaders of one term and their votes; two entries at one index and who appended,
//! committed and applied each; a durable write that came too late) and the events that touch
//! them, read from the servers' observations (`role`, `log`, `commit`, `applied`), their
//! durable writes (`persist`) and their Raft messages.

use super::index::{observations, sends, Index};
use super::parse::{hard_states, hex_after, num_after, raft_msg, u, vote_reply};
use super::{at, pick_chain, Candidate, Explanation};
use crate::raft::node::LogChange;
use serde_json::Value;
use sim::trace::{Record, StepInput};
use sim::{Fault, NodeId, Violation};
use std::collections::BTreeMap;

/// Every server's durable log as its `log` observations tell it, replayed in trace order.
#[derive(Default)]
struct Logs {
    logs: BTreeMap<NodeId, BTreeMap<u64, (u64, u64)>>,
    /// Each server's snapshot point `(index, term)`.
    snap: BTreeMap<NodeId, (u64, u64)>,
}

/// What a log holds at an index.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Held {
    Entry(u64, u64),
    /// Inside the snapshot (which holds only committed entries).
    Compacted,
    Missing,
}

impl Logs {
    fn apply(&mut self, node: NodeId, change: &LogChange) {
        let log = self.logs.entry(node).or_default();
        match change {
            LogChange::Append { entries } => {
                for &(i, t, e) in entries {
                    log.insert(i, (t, e));
                }
            }
            LogChange::Truncate { from } => {
                log.split_off(from);
            }
            LogChange::Snapshot { index, term } => {
                *log = log.split_off(&(index + 1));
                self.snap.insert(node, (*index, *term));
            }
        }
    }

    fn held(&self, node: NodeId, index: u64) -> Option<(u64, u64)> {
        self.logs.get(&node)?.get(&index).copied()
    }

    fn holds(&self, node: NodeId, index: u64) -> Held {
        match self.held(node, index) {
            Some((t, e)) => Held::Entry(t, e),
            None if self.snap.get(&node).is_some_and(|s| s.0 >= index) => Held::Compacted,
            None => Held::Missing,
        }
    }

    /// The last `(index, term)` of a server's log (its snapshot point if the log is empty).
    fn last(&self, node: NodeId) -> (u64, u64) {
        let snap = self.snap.get(&node).copied().unwrap_or((0, 0));
        self.logs
            .get(&node)
            .and_then(|l| l.last_key_value())
            .map_or(snap, |(&i, &(t, _))| (i, t))
    }
}

/// Every server's log replayed up to (not including) the record at `until`.
fn logs_before(ix: &Index, until: usize) -> Logs {
    let mut logs = Logs::default();
    for (pos, _, _, n, out) in ix.steps() {
        if pos >= until {
            break;
        }
        for c in observations(out).filter_map(log_change) {
            logs.apply(n, &c);
        }
    }
    logs
}

/// A delivery's message in words (`AppendEntries from s3 (message 12: term 5, prev 7/4,
/// 2 entries, commit 8)`) and the position of its send.
pub(super) fn delivered(ix: &Index, pos: usize) -> Option<(String, Option<usize>)> {
    let Record::Step {
        input: StepInput::Deliver { from, id, msg },
        ..
    } = ix.rec(pos)
    else {
        return None;
    };
    let (kind, body) = raft_msg(msg).unwrap_or(("message", msg));
    let mut fields = vec![];
    for (k, label) in [
        ("term", "term"),
        ("prev_log_index", "prevLogIndex"),
        ("prev_log_term", "prevLogTerm"),
        ("leader_commit", "leaderCommit"),
        ("last_log_index", "lastLogIndex"),
        ("last_log_term", "lastLogTerm"),
        ("last_included_index", "lastIncludedIndex"),
    ] {
        if let Some(x) = u(body, k) {
            fields.push(format!("{label} {x}"));
        }
    }
    if let Some(e) = body.get("entries").and_then(Value::as_array) {
        fields.push(format!("{} entries", e.len()));
    }
    if let Some(g) = body.get("vote_granted").and_then(Value::as_bool) {
        fields.push(format!("granted {g}"));
    }
    let fields = if fields.is_empty() {
        String::new()
    } else {
        format!(": {}", fields.join(", "))
    };
    Some((
        format!("{kind} from {} (message {id}{fields})", ix.name(*from)),
        ix.send_of(*id),
    ))
}

/// The candidates for a step's cause: the send of the message it handles.
fn cause_candidate(ix: &Index, pos: usize, prio: u8, into: &mut Vec<Candidate>) -> Option<String> {
    let (what, send) = delivered(ix, pos)?;
    if let (
        Some(p),
        Record::Step {
            node,
            input: StepInput::Deliver { from, .. },
            ..
        },
    ) = (send, ix.rec(pos))
    {
        let sent = what.replacen(
            &format!(" from {}", ix.name(*from)),
            &format!(" to {}", ix.name(*node)),
            1,
        );
        into.push(Candidate {
            prio,
            pos: p,
            what: format!("sends {sent}"),
        });
    }
    Some(what)
}

/// The log change an observation reports.
fn log_change(obs: &Value) -> Option<LogChange> {
    serde_json::from_value(obs.get("log")?.clone()).ok()
}

/// `(role, term)` of a role observation.
fn role(obs: &Value) -> Option<(&str, u64)> {
    let r = obs.get("role")?;
    Some((r.get("role")?.as_str()?, u(r, "term")?))
}

/// One line for a step's Raft-relevant outputs (role changes, log writes, commits, durable
/// term and vote), or `None` if it has none.
pub(super) fn describe_step(out: &[Value]) -> Option<String> {
    let mut parts = Vec::new();
    for obs in observations(out) {
        if let Some((r, t)) = role(obs) {
            parts.push(format!("{r} in term {t}"));
        } else if let Some(c) = log_change(obs) {
            parts.push(match c {
                LogChange::Append { entries } => match (entries.first(), entries.last()) {
                    (Some(a), Some(b)) if a.0 == b.0 => {
                        format!("appends index {} (term {})", a.0, a.1)
                    }
                    (Some(a), Some(b)) => {
                        format!("appends {}..{} (terms {}..{})", a.0, b.0, a.1, b.1)
                    }
                    _ => continue,
                },
                LogChange::Truncate { from } => format!("deletes its log from index {from}"),
                LogChange::Snapshot { index, term } => {
                    format!("snapshots through index {index} (term {term})")
                }
            });
        } else if let Some(op) = obs.get("invoke").and_then(|i| i.get("op")) {
            parts.push(format!("invokes {op}"));
        } else if let Some(c) = obs.get("complete") {
            let result = c.get("result").map_or("null".into(), |r| r.to_string());
            parts.push(format!(
                "completes {} -> {result}",
                c.get("op").unwrap_or(c)
            ));
        } else if let Some(c) = obs.get("commit") {
            parts.push(format!(
                "commitIndex {} (term {})",
                u(c, "commit_index").unwrap_or(0),
                u(c, "term").unwrap_or(0)
            ));
        }
    }
    for (term, vote) in hard_states(out) {
        parts.push(match vote {
            Some(v) => format!("persists term {term}, vote s{v}"),
            None => format!("persists term {term}, no vote"),
        });
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Crashes, restarts, disconnections and partitions naming any of `nodes`, as candidates.
pub(super) fn fault_candidates(ix: &Index, nodes: &[NodeId], prio: u8, into: &mut Vec<Candidate>) {
    for (pos, (_, r)) in ix.trace.records.iter().enumerate() {
        let Record::Fault { fault, noop, .. } = r else {
            continue;
        };
        if *noop || !fault.nodes().iter().any(|n| nodes.contains(n)) {
            continue;
        }
        let what = match fault {
            Fault::Crash(n) => format!("{} crashes", ix.name(*n)),
            Fault::Restart(n) => format!("{} restarts from its durable state", ix.name(*n)),
            Fault::Disconnect(n) => format!("{} is disconnected", ix.name(*n)),
            Fault::Reconnect(n) => format!("{} is reconnected", ix.name(*n)),
            Fault::Partition(g) => {
                format!(
                    "partition {}",
                    crate::view::model::groups_label(&ix.names, g)
                )
            }
            other => format!("{other:?}"),
        };
        into.push(Candidate { prio, pos, what });
    }
}

/// What the trace tells about one entry `(index, term, entry)` (`term` `None`: any term).
struct EntryStory {
    index: u64,
    term: Option<u64>,
    entry: u64,
    /// The first step that appended it, and whether that server led then (its own append).
    first: Option<(usize, NodeId, bool)>,
    holders: Vec<(NodeId, usize)>,
    lost: Vec<(NodeId, usize)>,
    committed: Vec<(NodeId, usize)>,
    applied: Vec<(NodeId, usize)>,
}

impl EntryStory {
    fn new(ix: &Index, index: u64, term: Option<u64>, entry: u64) -> Self {
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

    fn label(&self) -> String {
        match self.term {
            Some(t) => format!("entry {} (term {t}, {:#x})", self.index, self.entry),
            None => format!("entry {} ({:#x})", self.index, self.entry),
        }
    }

    /// One line: who appended, held, committed, applied and lost the entry.
    fn fact(&self, ix: &Index) -> String {
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

    fn candidates(&self, into: &mut Vec<Candidate>) {
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
    fn anchors(&self) -> Vec<usize> {
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
struct Vote {
    voter: NodeId,
    pos: usize,
    id: u64,
    voter_last: (u64, u64),
    cand_last: Option<(u64, u64)>,
    held: Held,
}

/// How `leader` won `term`: its candidacy, the votes granted to it, and the step it became
/// leader in (the last one at or before `until`).
struct Election {
    leader: NodeId,
    term: u64,
    candidate: Option<usize>,
    elected: Option<usize>,
    votes: Vec<Vote>,
}

impl Election {
    fn new(ix: &Index, leader: NodeId, term: u64, until: usize, index: u64) -> Self {
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

    fn fact(&self, ix: &Index) -> String {
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

    fn candidates(&self, ix: &Index, prio_votes: u8, into: &mut Vec<Candidate>) {
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

/// **Election safety**: two leaders of one term, the votes of each, and a server that voted
/// for both.
pub(super) fn election_safety(ix: &Index, v: &Violation) -> Option<Explanation> {
    let term = num_after(&v.failure.detail, "in term ", 0)?;
    let (&a, &b) = (v.failure.nodes.first()?, v.failure.nodes.get(1)?);
    let until = ix.pos_of(v.event)?;
    let ea = Election::new(ix, a, term, until, 0);
    let eb = Election::new(ix, b, term, until, 0);
    let mut facts = vec![
        format!("{} and {} both won term {term}", ix.name(a), ix.name(b)),
        ea.fact(ix),
        eb.fact(ix),
    ];
    let both: Vec<NodeId> = ea
        .votes
        .iter()
        .map(|x| x.voter)
        .filter(|n| eb.votes.iter().any(|y| y.voter == *n))
        .chain([a, b].into_iter().filter(|&n| {
            // a candidate's own vote counts too: one that also granted the other's request
            ea.votes.iter().chain(&eb.votes).any(|x| x.voter == n)
        }))
        .collect();
    let mut both = both;
    both.sort_unstable();
    both.dedup();
    for &n in &both {
        facts.push(format!(
            "{} voted for both in term {term}: one vote per term (Section 5.2) was broken there",
            ix.name(n)
        ));
    }
    let mut c = vec![];
    ea.candidates(ix, 1, &mut c);
    eb.candidates(ix, 1, &mut c);
    for x in c.iter_mut() {
        if both
            .iter()
            .any(|&n| x.what.starts_with(&format!("{} grants", ix.name(n))))
        {
            x.prio = 0;
        }
    }
    fault_candidates(ix, &both, 1, &mut c);
    fault_candidates(ix, &[a, b], 2, &mut c);
    let anchors: Vec<usize> = [Some(until), ea.elected, eb.elected]
        .into_iter()
        .flatten()
        .collect();
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors: anchors.clone(),
        chosen: format!("the campaigns, votes and wins of term {term}, and the faults of the servers that voted twice, on the causal path of either win"),
    })
}

/// **Leader completeness**: a leader lacks a committed entry: the entry's story and the
/// election of the leader (with which voters held the entry).
pub(super) fn leader_completeness(ix: &Index, v: &Violation) -> Option<Explanation> {
    let d = &v.failure.detail;
    let leader = *v.failure.nodes.first()?;
    let term = num_after(d, "leader of term ", 0)?;
    let index = num_after(d, "lacks entry ", 0)?;
    let eterm = num_after(d, "(term ", 0)?;
    let entry = hex_after(d, "entry 0x", 0)?;
    let until = ix.pos_of(v.event)?;
    let story = EntryStory::new(ix, index, Some(eterm), entry);
    let el = Election::new(ix, leader, term, until, index);
    let mut facts = vec![
        format!(
            "{} leads term {term} without {} that was committed before",
            ix.name(leader),
            story.label()
        ),
        story.fact(ix),
    ];
    if let Some(f) = old_term_commit(ix, &story) {
        facts.push(f);
    }
    facts.push(el.fact(ix));
    let mut refused = vec![];
    let mut allowed = vec![];
    for v in &el.votes {
        if !matches!(v.held, Held::Compacted) && v.held != Held::Entry(eterm, entry) {
            continue;
        }
        let (vi, vt) = v.voter_last;
        let who = format!("{} (log ends at index {vi} term {vt})", ix.name(v.voter));
        match v.cand_last {
            // Section 5.4.1: grant only if the candidate's last term is higher, or equal with
            // a log at least as long.
            Some((ci, ct)) if (ct, ci) < (vt, vi) && !refused.contains(&who) => refused.push(who),
            Some((ci, ct)) if (ct, ci) < (vt, vi) => {}
            Some(_) if !allowed.contains(&who) => allowed.push(who),
            Some(_) => {}
            None => {}
        }
    }
    let last = el.votes.iter().find_map(|v| v.cand_last);
    let cand = last.map_or(String::new(), |(i, t)| {
        format!(" (its log ended at index {i} term {t})")
    });
    if !refused.is_empty() {
        facts.push(format!(
            "{} held the entry and had the more up-to-date log, yet voted for {}{cand}: the election restriction (Section 5.4.1) was not applied",
            refused.join(", "),
            ix.name(leader)
        ));
    } else if !allowed.is_empty() {
        facts.push(format!(
            "{} held the entry but voted for {}{cand}, whose log was at least as up-to-date: the restriction compares last entries, so the entry should not have counted as committed",
            allowed.join(", "),
            ix.name(leader)
        ));
    }
    let mut c = vec![];
    story.candidates(&mut c);
    el.candidates(ix, 1, &mut c);
    let mut nodes: Vec<NodeId> = story.holders.iter().map(|h| h.0).collect();
    nodes.push(leader);
    fault_candidates(ix, &nodes, 2, &mut c);
    let mut anchors = story.anchors();
    anchors.push(until);
    anchors.extend(el.elected);
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors: anchors.clone(),
        chosen: format!(
            "the appends, commits and deletions of entry {index} and {}'s campaign in term {term}, on the causal path of the commit or the election",
            ix.name(leader)
        ),
    })
}

/// A fact if the entry's first commit made the commit index point at an entry of an earlier
/// term than the committing server's: Section 5.4.2 (Figure 8) forbids a leader to commit an
/// earlier term's entries by counting replicas.
fn old_term_commit(ix: &Index, story: &EntryStory) -> Option<String> {
    let &(node, pos) = story.committed.first()?;
    let Record::Step { out, .. } = ix.rec(pos) else {
        return None;
    };
    let c = observations(out).find_map(|o| o.get("commit"))?;
    let (ci, ct) = (u(c, "commit_index")?, u(c, "term")?);
    let logs = logs_before(ix, pos + 1);
    let (at_term, _) = logs.held(node, ci)?;
    (at_term < ct).then(|| {
        format!(
            "{} committed through index {ci}, an entry of term {at_term}, while in term {ct} at {}: a leader may commit earlier terms' entries only by committing one of its own term (Section 5.4.2, Figure 8)",
            ix.name(node),
            at(ix, pos)
        )
    })
}

/// An entry's term (if known) and identity.
type TermEntry = (Option<u64>, u64);

/// **Committed entries agree**, **state machine safety**, **log matching**: two different
/// entries at one index, and the story of each.
pub(super) fn conflicting_entries(ix: &Index, v: &Violation) -> Option<Explanation> {
    let d = &v.failure.detail;
    let node = *v.failure.nodes.first()?;
    let until = ix.pos_of(v.event)?;
    let (index, a, b): (u64, TermEntry, TermEntry) = match v.failure.property.as_str() {
        "committed entries agree" => (
            num_after(d, "committed entry ", 0)?,
            (num_after(d, "(term ", 1), hex_after(d, "entry 0x", 1)?),
            (num_after(d, "(term ", 0), hex_after(d, "entry 0x", 0)?),
        ),
        "state machine safety" => (
            num_after(d, "at index ", 0).or_else(|| num_after(d, "through index ", 0))?,
            (num_after(d, "(term Some(", 1), hex_after(d, "entry 0x", 1)?),
            (num_after(d, "(term Some(", 0), hex_after(d, "entry 0x", 0)?),
        ),
        _ => {
            // log matching: index i term t follows different terms at i - 1 on two logs
            let i = num_after(d, "holds index ", 0)?;
            let mine = num_after(d, "after an entry of term ", 0)?;
            let theirs = num_after(d, "after term ", 0)?;
            let e_mine = logs_before(ix, until + 1)
                .held(node, i - 1)
                .filter(|h| h.0 == mine)
                .map(|h| h.1)?;
            let e_theirs = first_entry(ix, i - 1, theirs)?;
            (i - 1, (Some(theirs), e_theirs), (Some(mine), e_mine))
        }
    };
    let sa = EntryStory::new(ix, index, a.0, a.1);
    let sb = EntryStory::new(ix, index, b.0, b.1);
    let facts = vec![
        format!(
            "two different entries at index {index}: {} and {}",
            sa.label(),
            sb.label()
        ),
        format!("first: {}", sa.fact(ix)),
        format!("then: {}", sb.fact(ix)),
        format!(
            "{} at {}{}: {}",
            v.failure.property,
            at(ix, until),
            delivered(ix, until).map_or(String::new(), |(m, _)| format!(" on {m}")),
            v.failure.detail
        ),
    ];
    let mut c = vec![];
    let cause = cause_candidate(ix, until, 0, &mut c);
    c.push(Candidate {
        prio: 0,
        pos: until,
        what: match &cause {
            Some(m) => format!("on {m}: {} violated", v.failure.property),
            None => format!("{} violated by {}", v.failure.property, ix.name(node)),
        },
    });
    sa.candidates(&mut c);
    sb.candidates(&mut c);
    for t in [sa.term, sb.term].into_iter().flatten() {
        leader_wins(ix, t, until, &mut c);
    }
    let mut nodes: Vec<NodeId> = sa.holders.iter().chain(&sb.holders).map(|h| h.0).collect();
    nodes.dedup();
    fault_candidates(ix, &nodes, 3, &mut c);
    let mut anchors = sa.anchors();
    anchors.extend(sb.anchors());
    anchors.push(until);
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors: anchors.clone(),
        chosen: format!("the appends, commits, applies and deletions of both entries at index {index} and the wins of their terms' leaders, on the causal path of either entry's commit or the violation"),
    })
}

/// The first entry ever appended at `(index, term)`.
fn first_entry(ix: &Index, index: u64, term: u64) -> Option<u64> {
    for (_, _, _, _, out) in ix.steps() {
        for c in observations(out).filter_map(log_change) {
            if let LogChange::Append { entries } = c {
                if let Some(&(_, _, e)) = entries.iter().find(|x| x.0 == index && x.1 == term) {
                    return Some(e);
                }
            }
        }
    }
    None
}

/// The steps in which a server became leader of `term` (before `until`), as candidates.
fn leader_wins(ix: &Index, term: u64, until: usize, into: &mut Vec<Candidate>) {
    for (pos, _, _, node, out) in ix.steps() {
        if pos > until {
            break;
        }
        if observations(out).any(|o| role(o) == Some(("leader", term))) {
            into.push(Candidate {
                prio: 1,
                pos,
                what: format!("{} becomes leader of term {term}", ix.name(node)),
            });
        }
    }
}

/// Durable-state properties: the server's durable writes of term and vote, the request it
/// answered, and its crashes and restarts.
pub(super) fn durability(ix: &Index, v: &Violation) -> Option<Explanation> {
    let node = *v.failure.nodes.first()?;
    let until = ix.pos_of(v.event)?;
    let mut facts = vec![];
    let mut c = vec![];
    if let Record::Step { input, out, .. } = ix.rec(until) {
        let replies: Vec<String> = sends(out)
            .filter_map(|(id, to, msg, _)| {
                let (kind, _) = raft_msg(msg)?;
                Some(format!("{kind} to {} (message {id})", ix.name(to)))
            })
            .collect();
        let cause = match input {
            StepInput::Deliver { from, id, msg } => {
                let kind = raft_msg(msg).map_or("a message", |m| m.0);
                if let Some(p) = ix.send_of(*id) {
                    c.push(Candidate {
                        prio: 0,
                        pos: p,
                        what: format!(
                            "{} sends {kind} to {} (message {id})",
                            ix.name(*from),
                            ix.name(node)
                        ),
                    });
                }
                format!("on {kind} from {} (message {id})", ix.name(*from))
            }
            StepInput::Timer { .. } => "on a timer".into(),
            StepInput::Start => "on starting".into(),
            StepInput::Input { .. } => "on a harness call".into(),
        };
        facts.push(format!(
            "{} at {} {cause}{}: {}",
            ix.name(node),
            at(ix, until),
            if replies.is_empty() {
                String::new()
            } else {
                format!(", sending {}", replies.join(", "))
            },
            v.failure.detail
        ));
        c.push(Candidate {
            prio: 0,
            pos: until,
            what: format!(
                "{cause}: {}",
                describe_step(out).unwrap_or_else(|| "steps".into())
            ),
        });
    }
    let mut writes = vec![];
    for (pos, _, _, n, out) in ix.steps() {
        if pos > until {
            break;
        }
        if n != node {
            continue;
        }
        let hs: Vec<(u64, Option<u64>)> = hard_states(out).collect();
        if let Some(&(t, vote)) = hs.last() {
            writes.push((pos, t, vote));
            c.push(Candidate {
                prio: 1,
                pos,
                what: describe_step(out).unwrap_or_default(),
            });
        } else if pos != until && describe_step(out).is_some() {
            c.push(Candidate {
                prio: 2,
                pos,
                what: describe_step(out).unwrap_or_default(),
            });
        }
    }
    let recent: Vec<String> = writes
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|&(pos, t, vote)| {
            let vote = vote.map_or("none".to_string(), |x| format!("s{x}"));
            format!("term {t} vote {vote} at {}", at(ix, pos))
        })
        .collect();
    facts.push(if recent.is_empty() {
        format!(
            "{} made no durable write of its term and vote before",
            ix.name(node)
        )
    } else {
        format!(
            "{}'s last durable writes of term and vote: {}",
            ix.name(node),
            recent.join("; ")
        )
    });
    let crashes = ix
        .trace
        .records
        .iter()
        .take(until)
        .filter(|(_, r)| matches!(r, Record::Fault { fault: Fault::Crash(n), noop: false, .. } if *n == node))
        .count();
    if crashes > 0 {
        facts.push(format!(
            "{} crashed {crashes} times before (a crash keeps only what is durable)",
            ix.name(node)
        ));
    }
    fault_candidates(ix, &[node], 1, &mut c);
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &[until], c),
        anchors: vec![until],
        chosen: format!(
            "{}'s durable writes, Raft steps and faults, and the request it answered, on the causal path of the violating step",
            ix.name(node)
        ),
    })
}
