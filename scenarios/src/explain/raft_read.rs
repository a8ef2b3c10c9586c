//! Reading Raft out of a trace: each server's log replayed from its `log` observations, role
//! and log observations, a delivered message in words, a step's Raft outputs in words, and
//! the faults that struck given servers.

use super::index::{observations, Index};
use super::parse::{hard_states, raft_msg, u};
use super::Candidate;
use crate::raft::node::LogChange;
use serde_json::Value;
use sim::trace::{Record, StepInput};
use sim::{Fault, NodeId};
use std::collections::BTreeMap;

/// Every server's durable log as its `log` observations tell it, replayed in trace order.
#[derive(Default)]
pub(super) struct Logs {
    logs: BTreeMap<NodeId, BTreeMap<u64, (u64, u64)>>,
    /// Each server's snapshot point `(index, term)`.
    snap: BTreeMap<NodeId, (u64, u64)>,
}

/// What a log holds at an index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Held {
    Entry(u64, u64),
    /// Inside the snapshot (which holds only committed entries).
    Compacted,
    Missing,
}

impl Logs {
    pub(super) fn apply(&mut self, node: NodeId, change: &LogChange) {
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

    pub(super) fn held(&self, node: NodeId, index: u64) -> Option<(u64, u64)> {
        self.logs.get(&node)?.get(&index).copied()
    }

    pub(super) fn holds(&self, node: NodeId, index: u64) -> Held {
        match self.held(node, index) {
            Some((t, e)) => Held::Entry(t, e),
            None if self.snap.get(&node).is_some_and(|s| s.0 >= index) => Held::Compacted,
            None => Held::Missing,
        }
    }

    /// The last `(index, term)` of a server's log (its snapshot point if the log is empty).
    pub(super) fn last(&self, node: NodeId) -> (u64, u64) {
        let snap = self.snap.get(&node).copied().unwrap_or((0, 0));
        self.logs
            .get(&node)
            .and_then(|l| l.last_key_value())
            .map_or(snap, |(&i, &(t, _))| (i, t))
    }
}

/// Every server's log replayed up to (not including) the record at `until`.
pub(super) fn logs_before(ix: &Index, until: usize) -> Logs {
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
    // The index keeps an `entries` list as its length.
    if let Some(e) = body.get("entries").and_then(Value::as_u64) {
        fields.push(format!("{e} entries"));
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
pub(super) fn cause_candidate(
    ix: &Index,
    pos: usize,
    prio: u8,
    into: &mut Vec<Candidate>,
) -> Option<String> {
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
pub(super) fn log_change(obs: &Value) -> Option<LogChange> {
    serde_json::from_value(obs.get("log")?.clone()).ok()
}

/// `(role, term)` of a role observation.
pub(super) fn role(obs: &Value) -> Option<(&str, u64)> {
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
