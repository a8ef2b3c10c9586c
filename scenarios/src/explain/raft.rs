//! Accounts of Raft safety violations (`raft/checks.rs`, `raft/durable.rs`): the conflicting
//! facts (two leaders of one term and their votes; two entries at one index and who appended,
//! committed and applied each; a durable write that came too late) and the events that touch
//! them, read from the servers' observations (`role`, `log`, `commit`, `applied`), their
//! durable writes (`persist`) and their Raft messages.

use super::index::{observations, sends, Index};
use super::parse::{hard_states, hex_after, num_after, raft_msg, u};
use super::raft_read::{cause_candidate, delivered, log_change, logs_before, role, Held};
pub(super) use super::raft_read::{describe_step, fault_candidates};
use super::raft_story::{Election, EntryStory};
use super::{at, pick_chain, Candidate, Explanation};
use crate::raft::node::LogChange;
use sim::trace::{Record, StepInput};
use sim::{Fault, NodeId, Violation};

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
