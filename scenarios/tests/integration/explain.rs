//! Explanations of violations (`scenarios::explain`) on failing seeds of catalog bugs: each
//! account must name the conflicting facts the trace shows (checked against the trace here,
//! not against the explainer's own reading), every chain event must be a real event of the
//! trace in the causal past of the account's anchors (computed here independently), and the
//! correct build's passing runs get no account.

use crate::common::{root, sim, stdout, tmp};
use scenarios::explain::{explain, Explanation, Index};
use scenarios::run::run_scenario;
use scenarios::scenario::Scenario;
use serde_json::Value;
use sim::trace::{Record, StepInput};
use std::collections::BTreeMap;

/// Runs `file` with `bugs` on `seed` with a trace, and reads the trace back.
fn traced(file: &str, bugs: &[&str], seed: u64, edit: impl Fn(&mut Scenario)) -> Index {
    let mut sc = Scenario::load(&root().join(file)).unwrap();
    sc.bugs = bugs.iter().map(|b| b.to_string()).collect();
    edit(&mut sc);
    // Tests run at once: each trace gets its own file.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = tmp(&format!(
        "{k}-{}-{}-{seed}.jsonl",
        bugs.join("+"),
        file.replace('/', "_")
    ));
    let out = std::fs::File::create(&path).unwrap();
    run_scenario(
        &sc,
        seed,
        file,
        Some(Box::new(std::io::BufWriter::new(out))),
    )
    .unwrap();
    Index::load(&path).unwrap()
}

/// The causal past of `from` (positions), computed from the records alone: each record's
/// predecessors are the previous record of each node it involves (steps; faults naming the
/// node; heals naming every node) and, for a delivery or drop, the step that sent the message.
fn causal_past(ix: &Index, from: &[usize]) -> Vec<bool> {
    let records = &ix.trace.records;
    let mut preds: Vec<Vec<usize>> = vec![vec![]; records.len()];
    let mut last: BTreeMap<usize, usize> = BTreeMap::new();
    let mut sent: BTreeMap<u64, usize> = BTreeMap::new();
    for (pos, (_, r)) in records.iter().enumerate() {
        let nodes: Vec<usize> = match r {
            Record::Step {
                node, input, out, ..
            } => {
                if let StepInput::Deliver { id, .. } = input {
                    preds[pos].extend(sent.get(id));
                }
                for o in out {
                    if let Some(id) = o.pointer("/send/id").and_then(Value::as_u64) {
                        sent.insert(id, pos);
                    }
                }
                vec![*node]
            }
            Record::Drop { id, .. } => {
                preds[pos].extend(sent.get(id));
                vec![]
            }
            Record::Fault { fault, noop, .. } if !noop => {
                let n = fault.nodes();
                if n.is_empty() {
                    (0..ix.names.len()).collect()
                } else {
                    n
                }
            }
            _ => vec![],
        };
        for n in nodes {
            if let Some(p) = last.insert(n, pos) {
                preds[pos].push(p);
            }
        }
    }
    let mut seen = vec![false; records.len()];
    let mut stack = from.to_vec();
    while let Some(p) = stack.pop() {
        if !std::mem::replace(&mut seen[p], true) {
            stack.extend(preds[p].iter().copied());
        }
    }
    seen
}

/// What every account must satisfy: the violating event is an anchor, the chain is short,
/// in trace order, and every event is the record it claims, in the anchors' causal past.
fn check_chain(ix: &Index, e: &Explanation) {
    let v = ix.violation.as_ref().unwrap();
    let vpos = ix.pos_of(v.event).unwrap();
    assert!(e.anchors.contains(&vpos), "{e:?}");
    assert!(!e.chain.is_empty() && e.chain.len() <= scenarios::explain::MAX_CHAIN);
    let past = causal_past(ix, &e.anchors);
    let mut last = 0;
    for c in &e.chain {
        assert!(c.pos >= last, "chain out of order: {e:?}");
        last = c.pos;
        assert!(past[c.pos], "not on the causal path: {c:?}");
        let (n, t) = match ix.rec(c.pos) {
            Record::Step { n, t, .. }
            | Record::Fault { n, t, .. }
            | Record::Drop { n, t, .. }
            | Record::Note { n, t, .. } => (*n, *t),
            r => panic!("{r:?} is no event"),
        };
        assert_eq!((c.n, c.t), (n, t), "{c:?}");
        assert!(c.n <= v.event);
    }
}

/// The chain event at a step of `node` whose outputs contain `needle` (compact JSON).
fn chain_step_with(ix: &Index, e: &Explanation, node: usize, needle: &str) -> bool {
    e.chain.iter().any(|c| match ix.rec(c.pos) {
        Record::Step { node: n, out, .. } => {
            *n == node && out.iter().any(|o| o.to_string().contains(needle))
        }
        _ => false,
    })
}

/// The servers that granted their `term` vote to `to`, from the trace's messages.
fn granted(ix: &Index, term: u64, to: usize) -> Vec<usize> {
    let mut v = vec![];
    for (_, r) in &ix.trace.records {
        let Record::Step { node, out, .. } = r else {
            continue;
        };
        for o in out {
            let Some(s) = o.get("send") else { continue };
            let body = s.pointer("/msg/RequestVoteReply");
            let ok = body.is_some_and(|b| {
                b["request_term"].as_u64() == Some(term) && b["vote_granted"] == true
            });
            if ok && s["to"].as_u64() == Some(to as u64) {
                v.push(*node);
            }
        }
    }
    v
}

#[test]
fn two_leaders_of_one_term_are_explained_by_the_double_vote() {
    let ix = traced(
        "scenarios/raft/figure8.json",
        &["vote-twice-in-term"],
        3,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    let v = ix.violation.as_ref().unwrap();
    let (a, b) = (v.failure.nodes[0], v.failure.nodes[1]);
    let term: u64 = 43;
    assert!(v.failure.detail.ends_with(&format!("term {term}")), "{v}");
    assert_eq!(
        e.facts[0],
        format!("s{a} and s{b} both won term {term}"),
        "{e:?}"
    );
    // Exactly the servers that granted both candidates are named as double voters.
    let (ga, gb) = (granted(&ix, term, a), granted(&ix, term, b));
    let both: Vec<usize> = ga.iter().copied().filter(|n| gb.contains(n)).collect();
    assert!(!both.is_empty());
    for n in 0..5 {
        let named = e
            .facts
            .iter()
            .any(|f| f.starts_with(&format!("s{n} voted for both in term {term}")));
        assert_eq!(named, both.contains(&n), "s{n}: {e:?}");
    }
    // Both wins are in the chain.
    let win = format!("{{\"role\":{{\"role\":\"leader\",\"term\":{term}}}}}");
    assert!(chain_step_with(&ix, &e, a, &win) && chain_step_with(&ix, &e, b, &win));
}

#[test]
fn an_old_term_commit_is_named_as_the_figure8_mistake() {
    let ix = traced(
        "scenarios/raft/figure8.json",
        &["commit-old-terms"],
        4,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "leader completeness");
    assert!(
        e.facts[0].starts_with("s4 leads term 13 without entry 4 (term 5, "),
        "{e:?}"
    );
    let fig8 = e
        .facts
        .iter()
        .find(|f| f.contains("Figure 8"))
        .expect("the old-term commit");
    assert!(
        fig8.starts_with("s0 committed through index 4, an entry of term 5, while in term 11"),
        "{fig8}"
    );
    // The trace agrees: s0's commit to 4 in term 11 is in the chain.
    assert!(chain_step_with(
        &ix,
        &e,
        0,
        "{\"commit\":{\"commit_index\":4,\"term\":11}}"
    ));
    // The voters held the entry and the restriction let them vote: not a restriction bug.
    assert!(!e.facts.iter().any(|f| f.contains("was not applied")));
    // The correct build passes the same seed, and a passing run gets no account.
    let ok = traced("scenarios/raft/figure8.json", &[], 4, |_| {});
    assert!(ok.violation.is_none() && explain(&ok).is_none());
}

#[test]
fn a_vote_against_a_more_up_to_date_log_is_named_as_the_missing_restriction() {
    let ix = traced(
        "scenarios/fuzz/raft-swarm.json",
        &["no-election-restriction"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert!(
        e.facts[0].starts_with("s3 leads term 10 without entry 58 (term 1, "),
        "{e:?}"
    );
    let f = e
        .facts
        .iter()
        .find(|f| f.contains("the election restriction (Section 5.4.1) was not applied"))
        .expect("the restriction named");
    // Every voter it names granted s3 its vote in term 10 (the trace's messages say so).
    let voters = granted(&ix, 10, 3);
    for n in 0..5 {
        if f.contains(&format!("s{n} (log ends")) {
            assert!(voters.contains(&n), "s{n} did not vote for s3: {f}");
        }
    }
    assert!(f.ends_with("yet voted for s3 (its log ended at index 57 term 1): the election restriction (Section 5.4.1) was not applied"), "{f}");
}

#[test]
fn two_committed_entries_at_one_index_name_both_and_the_message_that_committed() {
    let ix = traced(
        "scenarios/fuzz/raft-swarm.json",
        &["heartbeat-skips-consistency-check"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "committed entries agree");
    assert!(e.facts[0].starts_with("two different entries at index 81: entry 81 (term 46, 0x71e9b35dd5bb0450) and entry 81 (term 38, 0x15cd185dea72c8cb)"), "{e:?}");
    assert!(
        e.facts[1].contains("appended by s3 as leader")
            && e.facts[2].contains("appended by s4 as leader"),
        "{e:?}"
    );
    // The heartbeat that made s1 commit the stale entry, and its send, are in the chain.
    let v = ix.violation.as_ref().unwrap();
    let Record::Step {
        input: StepInput::Deliver { id, .. },
        ..
    } = ix.rec(ix.pos_of(v.event).unwrap())
    else {
        panic!("the violation is a delivery");
    };
    let send = ix.send_of(*id).unwrap();
    assert!(e.chain.iter().any(|c| c.pos == send), "{e:?}");
}

#[test]
fn a_log_matching_break_names_the_two_previous_entries() {
    let ix = traced(
        "scenarios/fuzz/raft-swarm.json",
        &["prev-log-term-unchecked"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "log matching");
    // s4 holds index 74 of term 48 after an entry of term 30: the two entries at index 73.
    assert!(
        e.facts[0].starts_with("two different entries at index 73: entry 73 (term 48, ")
            && e.facts[0].contains(" and entry 73 (term 30, "),
        "{e:?}"
    );
    assert!(e.facts[2].contains("appended by s4 as leader"), "{e:?}");
    // The trace agrees: s4 appended index 73 in term 30, and the violating step is s4's
    // delivery of an AppendEntries whose prevLogIndex is 73 with prevLogTerm 48.
    let appended_73_30 = ix.trace.records.iter().any(|(_, r)| {
        matches!(r, Record::Step { node: 4, out, .. }
            if out.iter().any(|o| o.pointer("/obs/log/append/entries/0/0") == Some(&73.into())
                && o.pointer("/obs/log/append/entries/0/1") == Some(&30.into())))
    });
    assert!(appended_73_30);
    let v = ix.violation.as_ref().unwrap();
    let Record::Step {
        node: 4,
        input: StepInput::Deliver { msg, .. },
        ..
    } = ix.rec(ix.pos_of(v.event).unwrap())
    else {
        panic!("s4 breaks log matching on a message");
    };
    let ae = msg.pointer("/AppendEntries").expect("an AppendEntries");
    assert_eq!(
        (ae["prev_log_index"].as_u64(), ae["prev_log_term"].as_u64()),
        (Some(73), Some(48))
    );
}

#[test]
fn a_panic_gets_the_generic_account_with_the_message_it_handled() {
    let ix = traced(
        "scenarios/fuzz/raft-swarm.json",
        &["candidate-forgets-self-vote"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "panic");
    let v = ix.violation.as_ref().unwrap();
    let vpos = ix.pos_of(v.event).unwrap();
    let Record::Step {
        input: StepInput::Deliver { id, .. },
        ..
    } = ix.rec(vpos)
    else {
        panic!("the panic is on a delivery");
    };
    let last = e.chain.last().unwrap();
    assert_eq!(last.pos, vpos);
    assert!(
        last.what
            .starts_with(&format!("on RequestVote from s4 (message {id}: ")),
        "{last:?}"
    );
    assert!(e.chain.iter().any(|c| c.pos == ix.send_of(*id).unwrap()));
}

#[test]
fn an_answer_before_the_vote_was_durable_names_the_request() {
    let ix = traced(
        "scenarios/fuzz/raft-swarm.json",
        &["vote-not-persisted"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "persisted before responding");
    assert!(
        e.facts[0].starts_with("s0 at 0.283s (n=62) on RequestVote from s1 (message 0), sending RequestVoteReply to s1 (message 4)"),
        "{e:?}"
    );
    assert!(e.chain.iter().any(|c| c.pos == ix.send_of(0).unwrap()));
}

#[test]
fn a_stale_read_shrinks_to_the_write_it_missed() {
    let ix = traced("scenarios/fuzz/kv-swarm.json", &["stale-reads"], 1, |_| {});
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "linearizability");
    assert!(
        e.facts[0]
            .starts_with("the history of key \"0\" (52 operations) still fails with only these 2:"),
        "{e:?}"
    );
    let reason = e.facts.last().unwrap();
    assert_eq!(
        reason,
        "get(\"0\") -> \"\" by c0 must follow append(\"0\", \"x 0 29 y\") by c0 because it is c0's own earlier operation (program order), yet it does not see the value \"x 0 29 y\""
    );
    // The trace agrees: c0 (node 7) invoked the append, then the get, which returned "".
    let c0 = 7;
    assert!(chain_step_with(&ix, &e, c0, "\"value\":\"x 0 29 y\""));
    assert!(chain_step_with(&ix, &e, c0, "\"result\":\"\""));
}

#[test]
fn a_read_kept_with_what_it_shows_still_shrinks_to_the_missed_write() {
    // The failing key's history also has a later get showing 20 appends; ddmin alone keeps
    // it (a read is kept with the writes it shows), the pass over the closed set drops it.
    let ix = traced(
        "scenarios/fuzz/kv-swarm-read-index.json",
        &["read-index-before-own-term-commit"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert!(
        e.facts[0]
            .starts_with("the history of key \"2\" (46 operations) still fails with only these 2:"),
        "{e:?}"
    );
    assert_eq!(
        e.facts.last().unwrap(),
        "get(\"2\") -> \"\" by c2 must follow append(\"2\", \"x 2 0 y\") by c2 because it is c2's own earlier operation (program order), yet it does not see the value \"x 2 0 y\""
    );
}

#[test]
fn a_stale_get_names_the_missed_append_and_the_server_that_answered() {
    let ix = traced("scenarios/fuzz/kv-swarm.json", &["stale-reads"], 1, |sc| {
        sc.kv.as_mut().unwrap().linearizability = false;
    });
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "get returns the latest value");
    assert!(e.facts[0].starts_with("get(\"6\") -> \"\" by c6"), "{e:?}");
    assert!(e.facts[1].starts_with("it should have seen append(\"6\", \"x 6 23 y\") by the same client, which returned at 5.013s (n=5888) before the get began"), "{e:?}");
    assert!(
        e.facts[2].starts_with("s4 answered it (message 5823)"),
        "{e:?}"
    );
    // The trace agrees: the get's completion handled message 5823 from s4.
    let v = ix.violation.as_ref().unwrap();
    let Record::Step {
        input: StepInput::Deliver { from, id, .. },
        ..
    } = ix.rec(ix.pos_of(v.event).unwrap())
    else {
        panic!("the get completes on a reply");
    };
    assert_eq!((*from, *id), (4, 5823));
}

#[test]
fn an_append_applied_twice_names_both_log_entries() {
    let ix = traced(
        "scenarios/fuzz/kv-swarm.json",
        &["dedup-equal-seq-only"],
        10,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "appends exactly once");
    assert!(
        e.facts[0].starts_with("append(\"3\", \"x 3 36 y\") by c3 (seq 75)"),
        "{e:?}"
    );
    for (index, term) in [(439, 48), (446, 50)] {
        assert!(
            e.facts
                .iter()
                .any(|f| f.starts_with(&format!("index {index} (term {term}): taken by s2"))),
            "{e:?}"
        );
        // The trace agrees: a server applied client 10's seq 75 at that index, not as a duplicate.
        let needle = format!("\"index\":{index},\"term\":{term},\"client\":10,\"seq\":75");
        assert!(
            ix.trace.records.iter().any(|(_, r)| matches!(r, Record::Step { out, .. }
                if out.iter().any(|o| o.to_string().contains(&needle) && o.to_string().contains("\"duplicate\":false")))),
            "{needle}"
        );
    }
}

#[test]
fn replicas_that_disagree_after_a_snapshot_name_the_snapshot() {
    let ix = traced(
        "scenarios/fuzz/kv-swarm-snapshots.json",
        &["dedup-not-in-snapshot"],
        1,
        |_| {},
    );
    let e = explain(&ix).unwrap();
    check_chain(&ix, &e);
    assert_eq!(e.property, "replica agreement");
    assert_eq!(
        e.facts[0],
        "s5 and s6 hold different service states after index 43; they first differ after index 43"
    );
    assert!(
        e.facts[1].starts_with("s5 applied client 11 seq 6 "),
        "{e:?}"
    );
    assert!(
        e.facts[2].starts_with("s6 restored a snapshot through index 43 at "),
        "{e:?}"
    );
    assert!(
        e.facts[3].starts_with("s6 restored s5's own snapshot through index 43 (message "),
        "{e:?}"
    );
    // The trace agrees: the violating step is s6's delivery of an InstallSnapshot from s5.
    let v = ix.violation.as_ref().unwrap();
    let Record::Step {
        node: 6,
        input: StepInput::Deliver { from: 5, msg, .. },
        ..
    } = ix.rec(ix.pos_of(v.event).unwrap())
    else {
        panic!("s6 restores on a message from s5");
    };
    assert!(msg.pointer("/Raft/InstallSnapshot").is_some(), "{msg}");
}

#[test]
fn sim_prints_the_account_after_the_verdict() {
    let dir = tmp("figure8-commit-old-terms.json");
    let mut sc: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("scenarios/raft/figure8.json")).unwrap(),
    )
    .unwrap();
    sc["bugs"] = serde_json::json!(["commit-old-terms"]);
    std::fs::write(&dir, sc.to_string()).unwrap();
    let file = dir.to_str().unwrap();
    // Without a trace, `sim run` records one again to explain the failure.
    let run = stdout(&sim(&["run", "--seed", "4", file]));
    let lines: Vec<&str> = run.lines().collect();
    assert!(
        lines[1].starts_with("result    VIOLATION: leader completeness"),
        "{run}"
    );
    assert!(
        lines[2].starts_with("explain   s4 leads term 13 without entry 4"),
        "{run}"
    );
    assert!(run.contains("\nchain     15 events: "), "{run}");
    let trace = tmp("figure8-commit-old-terms.jsonl");
    let t = trace.to_str().unwrap();
    let traced = stdout(&sim(&["run", "--seed", "4", file, "--trace", t]));
    let account = |s: &str| -> String {
        s.lines()
            .skip_while(|l| !l.starts_with("explain"))
            .take_while(|l| {
                l.starts_with(' ') || l.starts_with("explain") || l.starts_with("chain")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(account(&run), account(&traced));
    let replay = stdout(&sim(&["replay", t]));
    assert_eq!(account(&replay), account(&run), "{replay}");
    let text = stdout(&sim(&["view", "--text", t]));
    assert_eq!(account(&text), account(&run), "{text}");
    // A passing run prints none.
    let ok = stdout(&sim(&["run", "--seed", "4", "scenarios/raft/figure8.json"]));
    assert!(!ok.contains("explain"), "{ok}");
}
