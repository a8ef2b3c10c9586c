//! Explanations of violations: a short causal account printed after a run's verdict
//! (`sim run`, `sim replay`, `sim view --text`) and drawn by `sim view`.
//!
//! An account has two parts. The *facts* name what conflicts, with times, nodes, terms,
//! indices and message ids: two leaders of one term and who voted for each, two entries at one
//! index and who appended, committed and applied each, the smallest failing sub-history of a
//! linearizability failure and the constraint it breaks in words. The *chain* is at most
//! [`MAX_CHAIN`] events of the trace, each on the causal path (happens-before, see
//! [`index`]) of the violating event or of one of the facts' own events, that touch what
//! conflicts (the terms, entries, votes or operations named): walking back from those events
//! along deliveries to their sends and along each node's earlier steps and faults, only the
//! events an account's filter calls relevant are kept, the facts' own first, then the most
//! recent.
//!
//! Explaining is post-processing: it reads a finished trace and never touches the run.

pub mod index;
mod kv;
mod lin;
mod ops;
mod parse;
mod raft;
mod raft_read;
mod raft_story;

pub use index::Index;

use serde_json::{json, Value};
use sim::{NodeId, Time};
use std::path::Path;

/// At most this many events in a chain.
pub const MAX_CHAIN: usize = 15;

/// One event of a chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainEvent {
    /// Position of the record in the trace (`Index::rec`).
    pub pos: usize,
    /// Event number `n`, virtual time, and the node (`None` for a global record).
    pub n: u64,
    pub t: Time,
    pub node: Option<NodeId>,
    /// What the event did that matters here.
    pub what: String,
}

/// A violation's account.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The property explained.
    pub property: String,
    /// The conflicting facts, one short line each.
    pub facts: Vec<String>,
    /// The chain of events that led there, in trace order.
    pub chain: Vec<ChainEvent>,
    /// How the chain was chosen (one sentence).
    pub chosen: String,
    /// The events the chain was walked back from (positions): the violating event and the
    /// facts' own events (a win, a commit, a return). Every chain event is in their causal past.
    pub anchors: Vec<usize>,
}

impl Explanation {
    /// The account as text lines (`explain ...`, `chain ...`), for the terminal.
    pub fn text(&self, names: &[String]) -> String {
        let mut out = String::new();
        for (i, f) in self.facts.iter().enumerate() {
            let head = if i == 0 { "explain" } else { "" };
            out.push_str(&format!("{head:<9} {f}\n"));
        }
        if self.chain.is_empty() {
            return out;
        }
        out.push_str(&format!(
            "chain     {} events: {}\n",
            self.chain.len(),
            self.chosen
        ));
        let tw = self
            .chain
            .iter()
            .map(|e| sim::fmt_time(e.t).len())
            .max()
            .unwrap_or(6);
        let nw = self
            .chain
            .iter()
            .map(|e| e.n.to_string().len() + 2)
            .max()
            .unwrap_or(3);
        for e in &self.chain {
            let node = e
                .node
                .map(|n| crate::view::model::node_name(names, n))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "  {:>tw$}  {:<nw$}  {:<4}  {}\n",
                sim::fmt_time(e.t),
                format!("n={}", e.n),
                node,
                e.what
            ));
        }
        out
    }

    /// The account as JSON for the viewer: `{property, facts, chosen, chain: [{rec, n, t,
    /// node, what}]}`, where `rec` is the record's position in the trace.
    pub fn to_json(&self) -> Value {
        json!({
            "property": self.property,
            "facts": self.facts,
            "chosen": self.chosen,
            "chain": self.chain.iter().map(|e| json!({
                "rec": e.pos, "n": e.n, "t": e.t, "node": e.node, "what": e.what,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The account of the run's violation, if the trace records one.
pub fn explain(ix: &Index) -> Option<Explanation> {
    let v = ix.violation.clone()?;
    let property = v.failure.property.clone();
    let account = match property.as_str() {
        "election safety" => raft::election_safety(ix, &v),
        "leader completeness" => raft::leader_completeness(ix, &v),
        "committed entries agree" | "state machine safety" | "log matching" => {
            raft::conflicting_entries(ix, &v)
        }
        "one vote per term"
        | "durable term monotonic"
        | "durable term covers log"
        | "persisted before responding" => raft::durability(ix, &v),
        "linearizability" => lin::explain(ix, &v),
        "get returns the latest value" => kv::stale_get(ix, &v),
        "appends exactly once" => kv::exactly_once(ix, &v),
        "replica agreement" => kv::replica_agreement(ix, &v),
        _ => None,
    };
    Some(account.unwrap_or_else(|| generic(ix, &v)))
}

/// Reads a trace file and explains its violation (`Ok(None)`: the run had none).
pub fn explain_file(path: &Path) -> Result<Option<(Explanation, Vec<String>)>, String> {
    let ix = Index::load(path)?;
    Ok(explain(&ix).map(|e| (e, ix.names.clone())))
}

/// The text of a trace file's account (empty if the run had no violation; one line saying
/// why if it cannot be built: an explanation never stands in the way of a verdict).
pub fn account_text(path: &Path) -> String {
    match explain_file(path) {
        Ok(Some((e, names))) => e.text(&names),
        Ok(None) => String::new(),
        Err(e) => format!("explain   no account: {}\n", e.replace('\n', " ")),
    }
}

/// A candidate chain event: its priority (0: a fact's own event, always kept first), its
/// position and what it did.
pub(crate) struct Candidate {
    pub prio: u8,
    pub pos: usize,
    pub what: String,
}

/// Chooses the chain: the candidates on the causal past of `anchors`, one per record (the
/// best priority), the [`MAX_CHAIN`] best by priority and then recency, in trace order.
pub(crate) fn pick_chain(
    ix: &Index,
    anchors: &[usize],
    mut candidates: Vec<Candidate>,
) -> Vec<ChainEvent> {
    let past = ix.causal_past(anchors);
    candidates.retain(|c| past[c.pos]);
    candidates.sort_by(|a, b| a.pos.cmp(&b.pos).then(a.prio.cmp(&b.prio)));
    candidates.dedup_by(|later, first| {
        if later.pos == first.pos {
            if !first.what.contains(&later.what) {
                first.what = format!("{}; {}", first.what, later.what);
            }
            true
        } else {
            false
        }
    });
    candidates.sort_by(|a, b| a.prio.cmp(&b.prio).then(b.pos.cmp(&a.pos)));
    candidates.truncate(MAX_CHAIN);
    candidates.sort_by_key(|c| c.pos);
    candidates
        .into_iter()
        .map(|c| {
            let (n, t, node) = ix.when(c.pos);
            ChainEvent {
                pos: c.pos,
                n,
                t,
                node,
                what: c.what,
            }
        })
        .collect()
}

/// `1.234s (n=56)`: when an event happened.
pub(crate) fn at(ix: &Index, pos: usize) -> String {
    let (n, t, _) = ix.when(pos);
    format!("{} (n={n})", sim::fmt_time(t))
}

/// An account for properties without a dedicated one: the latest events of the nodes the
/// violation names (role changes, log writes, commits, faults) on its causal past.
fn generic(ix: &Index, v: &sim::Violation) -> Explanation {
    let anchor = ix.pos_of(v.event);
    let mut candidates = Vec::new();
    if let Some(pos) = anchor {
        // The message the violating step handled, and its send.
        let cause = raft_read::cause_candidate(ix, pos, 0, &mut candidates);
        candidates.push(Candidate {
            prio: 0,
            pos,
            what: match cause {
                Some(m) => format!("on {m}: {} violated", v.failure.property),
                None => format!("{} violated", v.failure.property),
            },
        });
    }
    for (pos, _, _, node, out) in ix.steps() {
        if !v.failure.nodes.contains(&node) {
            continue;
        }
        if let Some(what) = raft::describe_step(out) {
            candidates.push(Candidate { prio: 1, pos, what });
        }
    }
    raft::fault_candidates(ix, &v.failure.nodes, 1, &mut candidates);
    let anchors: Vec<usize> = anchor.into_iter().collect();
    let chain = pick_chain(ix, &anchors, candidates);
    Explanation {
        property: v.failure.property.clone(),
        facts: vec![format!(
            "{} at {} (event {}); no dedicated account for this property: the chain is the latest events of {}",
            v.failure.property,
            sim::fmt_time(v.time),
            v.event,
            if v.failure.nodes.is_empty() {
                "the run".to_string()
            } else {
                v.failure.nodes.iter().map(|&n| ix.name(n)).collect::<Vec<_>>().join(", ")
            }
        )],
        chain,
        anchors,
        chosen: "role changes, log writes, commits and faults of the nodes named, on the causal path of the violating event (latest kept)".into(),
    }
}
