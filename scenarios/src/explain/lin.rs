//! Linearizability accounts: the failing key's history shrunk to a smallest failing
//! sub-history (delta debugging over operations, each candidate judged by the checker in
//! `sim::linearizability`; kept operations keep their order, so each client's program order
//! stays), then the contradiction in words, in the style of Elle: which order a constraint
//! forces (a client's own program order, or real time: "returned before it began") and what a
//! read saw instead.

use super::index::Index;
use super::ops::{client_ops, short, ClientOp};
use super::parse::quoted_after;
use super::{at, pick_chain, Candidate, Explanation};
use kv::model::{KvModel, KvOp, KvOperation};
use sim::linearizability::{check_with, Budget, CheckOptions, Verdict};
use sim::Violation;

/// Search steps one candidate sub-history may take; a candidate the checker cannot decide in
/// them counts as passing (it is not kept).
const CANDIDATE_STEPS: u64 = 200_000;
/// At most this many checker calls for one shrink.
const MAX_CHECKS: usize = 3000;

/// Does this sub-history fail the check?
fn fails(ops: &[KvOperation]) -> bool {
    let mut budget = Budget::unlimited().max_steps(CANDIDATE_STEPS);
    check_with(&KvModel, ops, &mut budget, CheckOptions::default()).verdict
        == Verdict::NotLinearizable
}

/// Delta debugging (Zeller's ddmin) over `items` (indices), for a smallest subset on which
/// `test` still holds; the result is 1-minimal unless the check budget ran out.
pub fn ddmin(items: Vec<usize>, test: &mut dyn FnMut(&[usize]) -> bool) -> Vec<usize> {
    let mut cur = items;
    let mut n = 2;
    let mut checks = 0;
    while cur.len() >= 2 && checks < MAX_CHECKS {
        let chunk = cur.len().div_ceil(n);
        let mut reduced = false;
        for start in (0..cur.len()).step_by(chunk) {
            let rest: Vec<usize> = cur[..start]
                .iter()
                .chain(cur[(start + chunk).min(cur.len())..].iter())
                .copied()
                .collect();
            checks += 1;
            if !rest.is_empty() && test(&rest) {
                cur = rest;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= cur.len() {
                break;
            }
            n = (n * 2).min(cur.len());
        }
    }
    cur
}

/// Does the value `seen` show the write `w` (an append's value inside it, a put's at its
/// start)?
fn shows(seen: &str, w: &ClientOp) -> bool {
    !w.input.value.is_empty()
        && match w.input.op {
            KvOp::Append => seen.contains(&w.input.value),
            KvOp::Put => seen.starts_with(&w.input.value),
            KvOp::Get => false,
        }
}

/// Why an operation must come before another, if a constraint says so.
fn must_precede(a: &ClientOp, b: &ClientOp, ix: &Index) -> Option<String> {
    if a.node == b.node && a.call_pos < b.call_pos {
        return Some(format!(
            "it is {}'s own earlier operation (program order)",
            ix.name(a.node)
        ));
    }
    match (a.ret_pos, a.ret) {
        (Some(rp), Some(r)) if r < b.call => Some(format!(
            "{}'s {} returned at {} before the {} began at {}",
            ix.name(a.node),
            a.input.op.as_str(),
            at(ix, rp),
            b.input.op.as_str(),
            at(ix, b.call_pos)
        )),
        _ => None,
    }
}

/// One line per contradiction the constraints force among `ops` (a failing sub-history).
fn reasons(ops: &[&ClientOp], ix: &Index) -> Vec<String> {
    let mut out = vec![];
    let read = |o: &ClientOp| match (&o.input.op, &o.result) {
        (KvOp::Get, Some(Some(v))) => Some(v.clone()),
        (KvOp::Get, Some(None)) => Some(String::new()),
        _ => None,
    };
    let label = |o: &ClientOp| format!("{} by {}", o.describe(), ix.name(o.node));
    for g in ops {
        let Some(seen) = read(g) else { continue };
        for w in ops {
            let writes = matches!(w.input.op, KvOp::Append | KvOp::Put);
            if !writes || w.input.value.is_empty() {
                continue;
            }
            if let Some(why) = must_precede(w, g, ix) {
                if !seen.contains(&w.input.value) {
                    out.push(format!(
                        "{} must follow {} because {why}, yet it does not see the value {}",
                        label(g),
                        label(w),
                        short(&w.input.value)
                    ));
                }
            }
            if let Some(why) = must_precede(g, w, ix) {
                if seen.contains(&w.input.value) && w.input.op == KvOp::Append {
                    out.push(format!(
                        "{} must come before {} because {why}, yet it already shows the value {}",
                        label(g),
                        label(w),
                        short(&w.input.value)
                    ));
                }
            }
        }
        for h in ops {
            let Some(later) = read(h) else { continue };
            if let Some(why) = must_precede(g, h, ix) {
                if !later.starts_with(&seen) && seen.starts_with(&later) {
                    out.push(format!(
                        "{} must follow {} because {why}, yet it sees less: {} lacks the end {} of {}",
                        label(h),
                        label(g),
                        short(&later),
                        short(&seen[later.len()..]),
                        short(&seen)
                    ));
                }
            }
        }
    }
    // Appends a read shows in the order opposite to the one a constraint forces.
    for a in ops.iter().filter(|o| o.input.op == KvOp::Append) {
        for b in ops.iter().filter(|o| o.input.op == KvOp::Append) {
            let Some(why) = must_precede(a, b, ix) else {
                continue;
            };
            for g in ops {
                let Some(seen) = read(g) else { continue };
                if let (Some(i), Some(j)) = (seen.find(&a.input.value), seen.find(&b.input.value)) {
                    if j < i {
                        out.push(format!(
                            "{} must come before {} because {why}, yet {} shows them the other way round",
                            label(a),
                            label(b),
                            label(g)
                        ));
                    }
                }
            }
        }
    }
    out.dedup();
    out
}

/// **Linearizability**: the smallest failing sub-history of the failing key, the constraint it
/// breaks, and the operations' calls and returns as the chain.
pub(super) fn explain(ix: &Index, v: &Violation) -> Option<Explanation> {
    let key = quoted_after(&v.failure.detail, "key ")?;
    let all: Vec<ClientOp> = client_ops(ix)
        .into_iter()
        .filter(|o| o.input.key == key)
        .collect();
    let history: Vec<KvOperation> = all.iter().map(ClientOp::operation).collect();
    if !fails(&history) {
        return None;
    }
    // A read is kept with the writes its value shows: a sub-history where a read sees a
    // value nobody wrote fails for a reason that says nothing about the run.
    let closure = |keep: &[usize]| -> Vec<usize> {
        let mut out: Vec<usize> = keep.to_vec();
        for &i in keep {
            if let (KvOp::Get, Some(Some(seen))) = (all[i].input.op, &all[i].result) {
                out.extend((0..all.len()).filter(|&j| shows(seen, &all[j])));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    };
    let mut test = |keep: &[usize]| {
        let sub: Vec<KvOperation> = closure(keep).iter().map(|&i| history[i].clone()).collect();
        fails(&sub)
    };
    let mut kept = closure(&ddmin((0..history.len()).collect(), &mut test));
    // ddmin is 1-minimal over the sets before their closure: a write it dropped may still be
    // in only because a read shows it. Drop single operations of the closed set too, latest
    // first, while it fails.
    let mut checks = 0;
    'shrink: while checks < MAX_CHECKS {
        for i in (0..kept.len()).rev() {
            let mut fewer = kept.clone();
            fewer.remove(i);
            let fewer = closure(&fewer);
            if fewer.len() < kept.len() {
                checks += 1;
                if test(&fewer) {
                    kept = fewer;
                    continue 'shrink;
                }
            }
        }
        break;
    }
    let ops: Vec<&ClientOp> = kept.iter().map(|&i| &all[i]).collect();
    let why = reasons(&ops, ix);
    let why: Vec<String> = why.into_iter().take(2).collect();
    let mut facts = vec![format!(
        "the history of key {key:?} ({} operations) still fails with only these {}:",
        all.len(),
        ops.len()
    )];
    // Reads and the operations a reason names one per line; the writes the reads merely show
    // are summed up.
    let named: Vec<bool> = ops
        .iter()
        .map(|o| {
            let l = format!("{} by {}", o.describe(), ix.name(o.node));
            o.input.op == KvOp::Get || why.iter().any(|w| w.contains(&l))
        })
        .collect();
    let mut shown = 0;
    for (o, _) in ops.iter().zip(&named).filter(|(_, n)| **n) {
        facts.push(format!(
            "  {} {} {}",
            ix.name(o.node),
            o.describe(),
            o.interval(ix)
        ));
        shown += 1;
    }
    if shown < ops.len() {
        facts.push(format!(
            "  and {} writes whose values the reads show",
            ops.len() - shown
        ));
    }
    if why.is_empty() {
        facts.push("no order of these operations that respects each client's program order and real time gives every read its value".into());
    } else {
        facts.extend(why);
    }
    let mut c = vec![];
    // The violating event (the harness's note of the check), then each operation's return.
    let mut anchors: Vec<usize> = ix.pos_of(v.event).into_iter().collect();
    for (o, named) in ops.iter().zip(&named) {
        // The operations the facts name first; the writes the reads merely show after.
        let prio = if *named { 0 } else { 2 };
        c.push(Candidate {
            prio,
            pos: o.call_pos,
            what: format!("invokes {}", o.call_text()),
        });
        if let Some(p) = o.ret_pos {
            c.push(Candidate {
                prio,
                pos: p,
                what: format!("{} returns", o.describe()),
            });
            let answer = super::kv::answered_by(ix, p);
            if let Some(sp) = answer.and_then(|(_, id)| ix.send_of(id)) {
                let (server, id) = answer.expect("answered");
                c.push(Candidate {
                    prio: 1,
                    pos: sp,
                    what: format!(
                        "{} answers {} (message {id})",
                        ix.name(server),
                        o.call_text()
                    ),
                });
            }
            anchors.push(p);
        } else {
            anchors.push(o.call_pos);
        }
        for a in super::ops::applies(ix, o.client, o.seq)
            .iter()
            .filter(|a| !a.duplicate)
            .take(1)
        {
            c.push(Candidate {
                prio: 1,
                pos: a.pos,
                what: format!(
                    "applies {} at index {} (term {})",
                    o.describe(),
                    a.index,
                    a.term
                ),
            });
        }
    }
    Some(Explanation {
        property: v.failure.property.clone(),
        facts,
        chain: pick_chain(ix, &anchors, c),
        anchors: anchors.clone(),
        chosen: format!("the calls, first applies and returns of the {} operations of the smallest failing sub-history (delta debugging with the checker)", ops.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::ddmin;

    #[test]
    fn ddmin_finds_a_one_minimal_failing_subset() {
        // Fails when both 3 and 7 are present.
        let mut calls = 0;
        let mut test = |s: &[usize]| {
            calls += 1;
            s.contains(&3) && s.contains(&7)
        };
        assert_eq!(ddmin((0..20).collect(), &mut test), vec![3, 7]);
        assert!(calls < 100);
    }
}
