//! Accounts of the KV lab assertions (`kv/tester.rs`): a Get that returned a stale value (the
//! operation, the write it should have seen, when that write returned, which server answered
//! and what it had applied), and an append applied twice (the two log entries, the leaders
//! that took each, the requests that carried them).

use super::index::{observations, Index};
use super::ops::{applies, client_ops, short, ClientOp};
use super::parse::{num_after, quoted_after, raft_msg, u};
use super::{at, pick_chain, Candidate, Explanation};
use kv::model::KvOp;
use sim::trace::{Record, StepInput};
use sim::{NodeId, Violation};
use std::collections::BTreeMap;

/// The server whose reply the step at `pos` (a client's completion) handled, and the message.
pub(super) fn answered_by(ix: &Index, pos: usize) -> Option<(NodeId, u64)> {
    match ix.rec(pos) {
        Record::Step {
            input: StepInput::Deliver { from, id, .. },
            ..
        } => Some((*from, *id)),
        _ => None,
    }
}

/// The index through which `server` had applied before the record at `until`.
fn applied_through(ix: &Index, server: NodeId, until: usize) -> u64 {
    let mut last = 0;
    for (pos, _, _, node, out) in ix.steps() {
        if pos >= until {
            break;
        }
        if node != server {
            continue;
        }
        for obs in observations(out) {
            if let Some(b) = obs.get("boot") {
                last = super::parse::u(b, "commit_index").unwrap_or(0);
            } else if let Some(i) = obs.get("applied").and_then(|a| super::parse::u(a, "index")) {
                last = i;
            } else if let Some(i) = obs
                .get("restored")
                .and_then(|a| super::parse::u(a, "index"))
            {
                last = i;
            }
        }
    }
    last
}

/// **Get returns the latest value** (the lab client's own expectation): the Get, the client's
/// latest append it did not see, and the server that answered.
pub(super) fn stale_get(ix: &Index, v: &Violation) -> Option<Explanation> {
    let node = *v.failure.nodes.first()?;
    let until = ix.pos_of(v.event)?;
    let d = &v.failure.detail;
    let ops = client_ops(ix);
    let get = ops.iter().rev().find(|o| {
        o.node == node && o.input.op == KvOp::Get && o.ret_pos.is_some_and(|p| p <= until)
    })?;
    let got = match &get.result {
        Some(Some(g)) => g.clone(),
        _ => String::new(),
    };
    let expected = quoted_after(d, "expected ").unwrap_or_default();
    // The client's own writes to the key that returned before the get began and that its value
    // does not show: the latest one is the write it should have seen.
    let missed: Vec<&ClientOp> = ops
        .iter()
        .filter(|o| {
            o.node == node
                && o.input.key == get.input.key
                && o.input.op == KvOp::Append
                && o.ret_pos.is_some_and(|p| p < get.call_pos)
                && !got.contains(&o.input.value)
        })
        .collect();
    let mut facts = vec![format!(
        "{} by {} {} read {} but the client expected {}",
        get.describe(),
        ix.name(node),
        get.interval(ix),
        short(&got),
        short(&expected)
    )];
    let mut c = vec![Candidate {
        prio: 0,
        pos: get.call_pos,
        what: format!("invokes {}", get.call_text()),
    }];
    let mut anchors = vec![until, get.call_pos];
    if let Some(w) = missed.last() {
        let wa = applies(ix, w.client, w.seq);
        let first = wa.iter().find(|a| !a.duplicate);
        facts.push(format!(
            "it should have seen {} by the same client, which returned at {} before the get began{}{}",
            w.describe(),
            w.ret_pos.map_or("?".into(), |p| at(ix, p)),
            first.map_or(String::new(), |a| format!(
                "; applied at index {} (term {}) first by {} at {}",
                a.index,
                a.term,
                ix.name(a.server),
                at(ix, a.pos)
            )),
            if missed.len() > 1 { format!(" ({} of its appends are missing)", missed.len()) } else { String::new() }
        ));
        c.push(Candidate {
            prio: 0,
            pos: w.call_pos,
            what: format!("invokes {}", w.call_text()),
        });
        if let Some(p) = w.ret_pos {
            c.push(Candidate {
                prio: 0,
                pos: p,
                what: format!("{} returns", w.describe()),
            });
            anchors.push(p);
        }
        if let Some(a) = first {
            c.push(Candidate {
                prio: 1,
                pos: a.pos,
                what: format!("applies {} at index {}", w.describe(), a.index),
            });
        }
    }
    if let Some(rp) = get.ret_pos {
        if let Some((server, id)) = answered_by(ix, rp) {
            let ga = applies(ix, get.client, get.seq);
            let served = ga.iter().rev().find(|a| a.server == server && a.pos <= rp);
            let through = ix.send_of(id).map(|p| applied_through(ix, server, p + 1));
            facts.push(format!(
                "{} answered it (message {id}){}{}",
                ix.name(server),
                served.map_or(" without a log entry of the get".to_string(), |a| format!(
                    " after applying it at index {} (term {}) at {}",
                    a.index,
                    a.term,
                    at(ix, a.pos)
                )),
                through.map_or(String::new(), |i| format!(
                    "; it had applied through index {i}"
                ))
            ));
            if let Some(sp) = ix.send_of(id) {
                c.push(Candidate {
                    prio: 0,
                    pos: sp,
                    what: format!("{} sends the get's reply (message {id})", ix.name(server)),
                });
                anchors.push(sp);
            }
            if let Some(a) = served {
                c.push(Candidate {
                    prio: 1,
                    pos: a.pos,
                    what: format!("applies the get at index {}", a.index),
                });
            }
            c.push(Candidate {
                prio: 0,
                pos: rp,
                what: format!("{} returns", get.describe()),
            });
            super::raft::fault_candidates(ix, &[server], 2, &mut c);
            role_changes(ix, server, &mut c);
        }
    }
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors: anchors.clone(),
        chosen: "the get, the write it missed, their applies, the answering server's reply, role changes and faults, on the causal path of the get's return".into(),
    })
}

/// A server's role changes, as candidates of priority 2.
fn role_changes(ix: &Index, server: NodeId, into: &mut Vec<Candidate>) {
    for (pos, _, _, node, out) in ix.steps() {
        if node != server {
            continue;
        }
        for obs in observations(out) {
            if let Some((r, t)) = obs
                .get("role")
                .and_then(|r| Some((r.get("role")?.as_str()?, r.get("term")?.as_u64()?)))
            {
                into.push(Candidate {
                    prio: 2,
                    pos,
                    what: format!("{} is {r} in term {t}", ix.name(server)),
                });
            }
        }
    }
}

/// **Appends exactly once**: the append, the log entries it was applied from (each a new
/// command to the service), the leaders that took each, and the client's requests.
pub(super) fn exactly_once(ix: &Index, v: &Violation) -> Option<Explanation> {
    let d = &v.failure.detail;
    let c_index = num_after(d, "client ", 0)? as usize;
    let value = quoted_after(d, "append ")?;
    let node = ix.servers + c_index;
    let until = ix.pos_of(v.event)?;
    let ops = client_ops(ix);
    let op = ops
        .iter()
        .find(|o| o.node == node && o.input.op == KvOp::Append && o.input.value == value)?;
    let all = applies(ix, op.client, op.seq);
    let mut fresh: Vec<&super::ops::Apply> = vec![];
    for a in all.iter().filter(|a| !a.duplicate) {
        if !fresh.iter().any(|f| f.index == a.index) {
            fresh.push(a);
        }
    }
    let mut facts = vec![format!(
        "{} by {} (seq {}) {} took effect {} times",
        op.describe(),
        ix.name(node),
        op.seq,
        op.interval(ix),
        fresh.len().max(2)
    )];
    let mut c = vec![Candidate {
        prio: 0,
        pos: op.call_pos,
        what: format!("invokes {}", op.call_text()),
    }];
    let mut anchors = vec![until];
    for a in &fresh {
        let took = leader_append(ix, a.index, a.term);
        facts.push(format!(
            "index {} (term {}): {}applied as a new command by {} at {}",
            a.index,
            a.term,
            took.as_ref()
                .map_or(String::new(), |(pos, leader, msg)| format!(
                    "taken by {} as leader at {}{}, ",
                    ix.name(*leader),
                    at(ix, *pos),
                    msg.map_or(String::new(), |m| format!(" from request message {m}"))
                )),
            ix.name(a.server),
            at(ix, a.pos)
        ));
        c.push(Candidate {
            prio: 0,
            pos: a.pos,
            what: format!(
                "applies the append at index {} (not as a duplicate)",
                a.index
            ),
        });
        anchors.push(a.pos);
        if let Some((pos, leader, msg)) = took {
            c.push(Candidate {
                prio: 0,
                pos,
                what: format!(
                    "{} appends the request at index {} (term {})",
                    ix.name(leader),
                    a.index,
                    a.term
                ),
            });
            if let Some(sp) = msg.and_then(|m| ix.send_of(m)) {
                c.push(Candidate {
                    prio: 1,
                    pos: sp,
                    what: format!("sends the append's request (seq {})", op.seq),
                });
            }
        }
    }
    if fresh.len() >= 2 {
        facts.push(format!(
            "the duplicate table should have recognized {} (client id {}) seq {} at the second index",
            ix.name(node), op.client, op.seq
        ));
    }
    // The client's requests of this seq (the retries), and the reply it took.
    for (pos, _, _, n, out) in ix.steps() {
        if n != node {
            continue;
        }
        for (id, to, msg, lost) in super::index::sends(out) {
            let Some(r) = msg.get("Request") else {
                continue;
            };
            if super::parse::u(r, "seq") == Some(op.seq) {
                let lost = if lost { " (lost)" } else { "" };
                c.push(Candidate {
                    prio: 2,
                    pos,
                    what: format!("sends the append to {} (message {id}){lost}", ix.name(to)),
                });
            }
        }
    }
    if let Some(p) = op.ret_pos {
        c.push(Candidate {
            prio: 1,
            pos: p,
            what: format!("{} returns", op.describe()),
        });
    }
    let servers: Vec<NodeId> = fresh.iter().map(|a| a.server).collect();
    super::raft::fault_candidates(ix, &servers, 3, &mut c);
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors: anchors.clone(),
        chosen: "the append's requests, the log entries and applies it took effect from, on the causal path of those applies or the check".into(),
    })
}

/// The step where a leader appended `(index, term)` to its own log, with the leader and the
/// client request message it handled.
fn leader_append(ix: &Index, index: u64, term: u64) -> Option<(usize, NodeId, Option<u64>)> {
    for (pos, _, _, node, out) in ix.steps() {
        for obs in observations(out) {
            let Some(es) = obs
                .get("log")
                .and_then(|l| l.get("append"))
                .and_then(|a| a.get("entries"))
            else {
                continue;
            };
            let hit = es.as_array().is_some_and(|es| {
                es.iter().any(|e| {
                    e.get(0).and_then(|x| x.as_u64()) == Some(index)
                        && e.get(1).and_then(|x| x.as_u64()) == Some(term)
                })
            });
            if hit {
                let msg = match ix.rec(pos) {
                    Record::Step {
                        input: StepInput::Deliver { id, msg, .. },
                        ..
                    } if raft_msg(msg).is_none_or(|m| m.0 != "AppendEntries") => Some(*id),
                    _ => None,
                };
                return Some((pos, node, msg));
            }
        }
    }
    None
}

/// How one server reached a service state at an index: its apply there (digest, duplicate
/// flag, the command) or the snapshot it restored through it.
struct Reached {
    pos: usize,
    state: u64,
    how: String,
}

/// The last time each index up to `upto` was reached by `server` before `until`.
fn reached(ix: &Index, server: NodeId, upto: u64, until: usize) -> BTreeMap<u64, Reached> {
    let mut at_index = BTreeMap::new();
    for (pos, _, _, node, out) in ix.steps() {
        if pos > until {
            break;
        }
        if node != server {
            continue;
        }
        for obs in observations(out) {
            if let Some(a) = obs.get("applied") {
                let (Some(i), Some(state)) = (u(a, "index"), u(a, "state")) else {
                    continue;
                };
                if i <= upto {
                    let dup = a.get("duplicate").and_then(|d| d.as_bool()) == Some(true);
                    let how = format!(
                        "applied client {} seq {} {}{}",
                        u(a, "client").unwrap_or(0),
                        u(a, "seq").unwrap_or(0),
                        a.get("op").map_or(String::new(), |o| o.to_string()),
                        if dup {
                            " as a duplicate"
                        } else {
                            " as a new command"
                        }
                    );
                    at_index.insert(i, Reached { pos, state, how });
                }
            } else if let Some(r) = obs.get("restored") {
                let (Some(i), Some(state)) = (u(r, "index"), u(r, "state")) else {
                    continue;
                };
                if i <= upto {
                    let how = format!("restored a snapshot through index {i}");
                    at_index.insert(i, Reached { pos, state, how });
                }
            }
        }
    }
    at_index
}

/// **Replica agreement**: two servers hold different service states after one index: the
/// first index where both reached a state and the states differ, and how each got there.
pub(super) fn replica_agreement(ix: &Index, v: &Violation) -> Option<Explanation> {
    let d = &v.failure.detail;
    let index = num_after(d, "after index ", 0)?;
    let (&a, &b) = (v.failure.nodes.first()?, v.failure.nodes.get(1)?);
    let until = ix.pos_of(v.event)?;
    let (ra, rb) = (reached(ix, a, index, until), reached(ix, b, index, until));
    let first = ra
        .iter()
        .find(|(i, x)| rb.get(i).is_some_and(|y| y.state != x.state))
        .map(|(i, _)| *i)
        .unwrap_or(index);
    let mut facts = vec![format!(
        "{} and {} hold different service states after index {index}; they first differ after index {first}",
        ix.name(a),
        ix.name(b)
    )];
    let mut c = vec![];
    let mut anchors = vec![until];
    for (s, r) in [(a, &ra), (b, &rb)] {
        let Some(x) = r.get(&first) else { continue };
        facts.push(format!(
            "{} {} at {} (state {:#x})",
            ix.name(s),
            x.how,
            at(ix, x.pos),
            x.state
        ));
        c.push(Candidate {
            prio: 0,
            pos: x.pos,
            what: format!("{} at index {first}", x.how),
        });
        anchors.push(x.pos);
        // The snapshot each restored last at or before the index, with the message it came in.
        if let Some((i, y)) = r
            .range(..=first)
            .rev()
            .find(|(_, y)| y.how.starts_with("restored"))
        {
            if *i != first {
                facts.push(format!("{} had {} at {}", ix.name(s), y.how, at(ix, y.pos)));
            }
            c.push(Candidate {
                prio: 0,
                pos: y.pos,
                what: y.how.clone(),
            });
            super::raft_read::cause_candidate(ix, y.pos, 1, &mut c);
        }
    }
    // A server that reached the index by restoring the other's snapshot of it, into another
    // state: the snapshot did not carry the whole service state.
    for (s, r, o) in [(a, &ra, b), (b, &rb, a)] {
        let Some(x) = r.get(&first).filter(|x| x.how.starts_with("restored")) else {
            continue;
        };
        if let Some((from, id)) = answered_by(ix, x.pos).filter(|f| f.0 == o) {
            facts.push(format!(
                "{} restored {}'s own snapshot through index {first} (message {id}) into another state than {} had there: the snapshot does not carry the whole service state",
                ix.name(s),
                ix.name(from),
                ix.name(o)
            ));
        }
    }
    super::raft::fault_candidates(ix, &[a, b], 2, &mut c);
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors,
        chosen: format!("how each server reached index {first} (its apply or snapshot restore, and the message that brought the snapshot) and their faults, on the causal path of either"),
    })
}
