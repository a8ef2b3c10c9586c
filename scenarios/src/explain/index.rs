//! A finished trace held whole, with the links an explanation walks: event numbers to
//! records, message ids to the step that sent them, and each node's previous event. The
//! causal past of an event follows Lamport's happens-before over the trace: a node's earlier
//! steps (and the faults that struck it: crashes, restarts, partitions naming it), and for a
//! delivery, the step that sent the message.

use serde_json::Value;
use sim::trace::{Record, StepInput, Trace};
use sim::{Fault, NodeId, Time, Violation};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The longest trace an explanation reads: it holds the whole trace in memory, about 6 KB a
/// record (a 21,740-record KV trace took 128 MB), so half a million records stay near 3 GB.
pub const MAX_RECORDS: usize = 500_000;

/// A trace with its causal links. Positions (`pos`) index `trace.records`.
pub struct Index {
    pub trace: Trace,
    /// Node names from the header (`s0`, ..., `c0`, ...).
    pub names: Vec<String>,
    /// Servers are nodes `0..servers`; clients follow.
    pub servers: usize,
    /// The result record's violation, if the run had one.
    pub violation: Option<Violation>,
    /// Failures of checks that let the run go on (the result's `also`).
    pub also: Vec<Violation>,
    by_n: BTreeMap<u64, usize>,
    /// Message id → position of the step that sent it. Keyed lookups only, never iterated.
    send_at: HashMap<u64, usize>,
    /// Position → the previous record of the same node (a step, or a fault naming it).
    prev: Vec<Vec<usize>>,
}

impl Index {
    /// Reads a trace file whole, payloads expanded in full (an explanation compares values);
    /// a trace of more than [`MAX_RECORDS`] records is refused (memory grows with it).
    pub fn load(path: &Path) -> Result<Index, String> {
        let file = path.display();
        let mut reader = crate::view::open(path)?;
        let mut records = Vec::new();
        while let Some(next) = reader.next_record() {
            if records.len() >= MAX_RECORDS {
                return Err(format!(
                    "{file}: more than {MAX_RECORDS} records: too long to explain (shrink it first: sim shrink)"
                ));
            }
            let (line, r) = next.map_err(|e| format!("{file}: {e}"))?;
            records.push((line, expand(&reader, r)));
        }
        let format = reader.format();
        Ok(Index::new(Trace { records, format }))
    }

    /// Indexes a trace read back whole.
    pub fn new(trace: Trace) -> Index {
        let nodes = trace.header().3;
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let servers = nodes.iter().filter(|n| !n.client).count();
        let mut by_n = BTreeMap::new();
        let mut send_at = HashMap::new();
        let mut prev = vec![Vec::new(); trace.records.len()];
        let mut last: Vec<Option<usize>> = vec![None; names.len()];
        let (mut violation, mut also) = (None, Vec::new());
        for (pos, (_, r)) in trace.records.iter().enumerate() {
            if let Some(n) = crate::view::model::record_n(r) {
                by_n.insert(n, pos);
            }
            let touched: Vec<NodeId> = match r {
                Record::Step { node, out, .. } => {
                    for o in out {
                        if let Some(id) = o.get("send").and_then(|s| s.get("id")) {
                            if let Some(id) = id.as_u64() {
                                send_at.insert(id, pos);
                            }
                        }
                    }
                    vec![*node]
                }
                Record::Fault { fault, noop, .. } if !noop => match fault {
                    Fault::Heal | Fault::Network(_) | Fault::Release => (0..names.len()).collect(),
                    f => f.nodes(),
                },
                Record::Result {
                    violation: v,
                    also: a,
                    ..
                } => {
                    violation = v.clone();
                    also = a.clone();
                    vec![]
                }
                _ => vec![],
            };
            for node in touched {
                if let Some(slot) = last.get_mut(node) {
                    if let Some(p) = *slot {
                        prev[pos].push(p);
                    }
                    *slot = Some(pos);
                }
            }
        }
        Index {
            trace,
            names,
            servers,
            violation,
            also,
            by_n,
            send_at,
            prev,
        }
    }

    /// The record at `pos`.
    pub fn rec(&self, pos: usize) -> &Record {
        &self.trace.records[pos].1
    }

    /// The position of event number `n`.
    pub fn pos_of(&self, n: u64) -> Option<usize> {
        self.by_n.get(&n).copied()
    }

    /// A node's name.
    pub fn name(&self, node: NodeId) -> String {
        crate::view::model::node_name(&self.names, node)
    }

    /// The position of the step that sent message `id`.
    pub fn send_of(&self, id: u64) -> Option<usize> {
        self.send_at.get(&id).copied()
    }

    /// The `send` output with message id `id` (`{"to":..,"msg":..,"id":..}`).
    pub fn sent(&self, id: u64) -> Option<&Value> {
        let Record::Step { out, .. } = self.rec(self.send_of(id)?) else {
            return None;
        };
        out.iter()
            .filter_map(|o| o.get("send"))
            .find(|s| s.get("id").and_then(Value::as_u64) == Some(id))
    }

    /// The direct causal predecessors of the record at `pos`: the node's previous record and,
    /// for a delivery or a drop, the send.
    pub fn preds(&self, pos: usize) -> Vec<usize> {
        let mut p = self.prev[pos].clone();
        match self.rec(pos) {
            Record::Step {
                input: StepInput::Deliver { id, .. },
                ..
            }
            | Record::Drop { id, .. } => p.extend(self.send_of(*id)),
            _ => {}
        }
        p
    }

    /// Marks every record in the causal past of the records at `from` (themselves included).
    pub fn causal_past(&self, from: &[usize]) -> Vec<bool> {
        let mut seen = vec![false; self.trace.records.len()];
        let mut stack: Vec<usize> = from.to_vec();
        while let Some(pos) = stack.pop() {
            if std::mem::replace(&mut seen[pos], true) {
                continue;
            }
            stack.extend(self.preds(pos).into_iter().filter(|&p| !seen[p]));
        }
        seen
    }

    /// `(n, t, node)` of the record at `pos` (node `None` for a global record).
    pub fn when(&self, pos: usize) -> (u64, Time, Option<NodeId>) {
        match self.rec(pos) {
            Record::Step { n, t, node, .. } => (*n, *t, Some(*node)),
            Record::Drop { n, t, to, .. } => (*n, *t, Some(*to)),
            Record::Fault { n, t, fault, .. } => {
                let nodes = fault.nodes();
                (*n, *t, (nodes.len() == 1).then(|| nodes[0]))
            }
            Record::Note { n, t, .. } | Record::Branch { n, t, .. } => (*n, *t, None),
            _ => (0, 0, None),
        }
    }

    /// Every step, as `(pos, n, t, node, outputs)`, in trace order.
    pub fn steps(&self) -> impl Iterator<Item = (usize, u64, Time, NodeId, &[Value])> + '_ {
        self.trace
            .records
            .iter()
            .enumerate()
            .filter_map(|(pos, (_, r))| match r {
                Record::Step {
                    n, t, node, out, ..
                } => Some((pos, *n, *t, *node, out.as_slice())),
                _ => None,
            })
    }
}

/// A record with its observations expanded in full (accounts compare the values clients
/// read) and its messages, inputs and replies with strings and byte strings cut at 200
/// (accounts read their numbers; a whole snapshot or a Get's value in every AppendEntries would
/// multiply the memory a trace takes).
fn expand<R: std::io::BufRead>(reader: &sim::trace::TraceReader<R>, mut r: Record) -> Record {
    const BRIEF: usize = 200;
    if let Record::Step {
        input, out, reply, ..
    } = &mut r
    {
        match input {
            StepInput::Deliver { msg: v, .. } | StepInput::Input { input: v } => {
                *v = slim(reader.resolve_brief(v, BRIEF))
            }
            _ => {}
        }
        // Timers, cancels and log or snapshot writes are no account's business.
        out.retain(|o| {
            o.get("timer").is_none()
                && o.get("cancel").is_none()
                && o.get("persist")
                    .is_none_or(|p| p.get("HardState").is_some())
        });
        for o in out.iter_mut() {
            *o = if o.get("obs").is_some() {
                reader.resolve(o)
            } else {
                slim(reader.resolve_brief(o, BRIEF))
            };
        }
        if let Some(x) = reply {
            *x = reader.resolve_brief(x, BRIEF);
        }
    }
    r
}

/// A message or durable write with its bulk left out: an `entries` list becomes its length,
/// a snapshot's `data` is dropped. What accounts read (terms, indices, votes, sequence
/// numbers) stays.
fn slim(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "data")
                .map(|(k, x)| match (k.as_str(), x) {
                    ("entries", serde_json::Value::Array(a)) => (k, serde_json::json!(a.len())),
                    (_, x) => (k, slim(x)),
                })
                .collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(slim).collect()),
        other => other,
    }
}

/// The observations among a step's outputs.
pub fn observations(out: &[Value]) -> impl Iterator<Item = &Value> {
    out.iter().filter_map(|o| o.get("obs"))
}

/// The sends among a step's outputs: `(id, to, msg, lost)`.
pub fn sends(out: &[Value]) -> impl Iterator<Item = (u64, NodeId, &Value, bool)> {
    out.iter().filter_map(|o| {
        let s = o.get("send")?;
        let id = s.get("id")?.as_u64()?;
        let to = s.get("to")?.as_u64()? as NodeId;
        let lost = s.get("lost").is_some_and(|l| !l.is_null());
        Some((id, to, s.get("msg")?, lost))
    })
}
