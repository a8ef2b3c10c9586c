//! The list-append inference checked against a plain restatement of its rules.
//!
//! [`reference`] is the inference as it was before it was made fast: every read against every
//! write, every edge kept (real-time-implied ones too), no early stop. On random histories the
//! fast one must doom exactly the partitions the reference dooms and, when neither does, store
//! exactly the reference's edges that real time does not already imply.

use super::append_infer;
use super::constraints::{must_precede, program_order, Constraints};
use super::{AppendView, Model, Operation};
use std::collections::BTreeSet;

/// Raw edges and dooms, as the reference produces them.
#[derive(Default)]
struct Raw {
    edges: Vec<(usize, usize)>,
    doomed: Vec<usize>,
}

const MANY: u64 = 2;

/// The rules of `append_infer`'s module doc, restated directly.
fn reference<M: Model>(model: &M, ops: &[&Operation<M::Input, M::Output>], raw: &mut Raw) {
    let Some(views) = ops
        .iter()
        .map(|op| model.append_view(&op.input, &op.output))
        .collect::<Option<Vec<AppendView>>>()
    else {
        return;
    };
    let appends: Vec<(usize, &[u8])> = views
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            AppendView::Append(s) if !s.is_empty() => Some((i, s.as_bytes())),
            _ => None,
        })
        .collect();
    let puts: Vec<(usize, &[u8])> = views
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            AppendView::Put(s) => Some((i, s.as_bytes())),
            _ => None,
        })
        .collect();
    let writes: Vec<usize> = (0..ops.len())
        .filter(|&i| appends.iter().chain(&puts).any(|&(w, _)| w == i))
        .collect();
    for (g, v) in views.iter().enumerate() {
        let AppendView::Read(r) = v else { continue };
        let r = r.as_bytes();
        let n = r.len();
        let mut splits = vec![0u64; n + 1];
        let mut step = vec![(0usize, 0usize); n + 1];
        splits[n] = 1;
        for i in (0..n).rev() {
            let mut total = 0u64;
            let mut lens: Vec<usize> = appends
                .iter()
                .filter(|(_, a)| r[i..].starts_with(a))
                .map(|(_, a)| a.len())
                .collect();
            lens.sort_unstable();
            lens.dedup();
            for len in lens {
                let with: Vec<usize> = appends
                    .iter()
                    .filter(|(_, a)| a.len() == len && r[i..].starts_with(a))
                    .map(|&(op, _)| op)
                    .collect();
                let ways = splits[i + len].saturating_mul(with.len() as u64);
                if ways > 0 {
                    step[i] = (len, with[0]);
                }
                total = total.saturating_add(ways).min(MANY);
            }
            splits[i] = total;
        }
        let mut lengths: Vec<usize> = vec![0];
        lengths.extend(
            puts.iter()
                .filter(|(_, v)| r.starts_with(v))
                .map(|(_, v)| v.len()),
        );
        lengths.sort_unstable();
        lengths.dedup();
        let ways: u64 = lengths
            .iter()
            .map(|&l| splits[l])
            .fold(0, |a, b| a.saturating_add(b).min(MANY));
        if ways == 0 {
            raw.doomed.push(g);
            continue;
        }
        if ways > 1 {
            continue;
        }
        let len = *lengths.iter().find(|&&l| splits[l] == 1).unwrap();
        let mut seq = Vec::new();
        let mut at = len;
        while at < n {
            let (l, op) = step[at];
            seq.push(op);
            at += l;
        }
        if (1..seq.len()).any(|k| seq[..k].contains(&seq[k])) {
            raw.doomed.push(g);
            continue;
        }
        let mut candidates: Vec<Option<usize>> = Vec::new();
        if len == 0 {
            candidates.push(None);
        }
        candidates.extend(
            puts.iter()
                .filter(|(_, v)| v.len() == len && r.starts_with(v))
                .map(|&(p, _)| Some(p)),
        );
        for pair in seq.windows(2) {
            raw.edges.push((pair[0], pair[1]));
        }
        if let Some(&last) = seq.last() {
            raw.edges.push((last, g));
        }
        if let [Some(p)] = candidates[..] {
            raw.edges.push((p, seq.first().copied().unwrap_or(g)));
        }
        for &x in &writes {
            if seq.contains(&x) || candidates.contains(&Some(x)) {
                continue;
            }
            let after_all = candidates.iter().all(|c| match *c {
                None => true,
                Some(p) => must_precede(ops, p, x),
            });
            if after_all {
                raw.edges.push((g, x));
            }
        }
    }
}

/// Whether the partition is doomed, and its stored edges (deduplicated), with the fast
/// inference.
fn fast<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
) -> (bool, BTreeSet<(usize, usize)>) {
    let mut c = Constraints::new(ops);
    program_order(ops, &mut c);
    append_infer::infer(model, ops, &mut c);
    c.finish();
    let edges = c
        .succs
        .iter()
        .enumerate()
        .flat_map(|(a, s)| s.iter().map(move |&b| (a, b as usize)))
        .collect();
    (!c.doomed.is_empty(), edges)
}

/// The same with the reference: doomed, and the edges real time does not imply.
fn slow<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
) -> (bool, BTreeSet<(usize, usize)>) {
    let mut raw = Raw::default();
    reference(model, ops, &mut raw);
    let implied = |a: usize, b: usize| ops[a].ret.is_some_and(|r| r.max(ops[a].call) < ops[b].call);
    let mut all = Constraints::new(ops);
    let mut by_client: Vec<usize> = (0..ops.len()).collect();
    by_client.sort_by_key(|&i| (ops[i].client, ops[i].call, i));
    // Program order, restated: each returned operation before its client's next one.
    let mut last: Option<usize> = None;
    for &i in &by_client {
        if let Some(p) = last {
            if ops[p].client == ops[i].client {
                raw.edges.push((p, i));
            } else {
                last = None;
            }
        }
        if ops[i].ret.is_some() {
            last = Some(i);
        }
    }
    for &(a, b) in &raw.edges {
        all.succs[a].push(b as u32);
    }
    all.doomed = raw.doomed.clone();
    all.finish();
    let edges = raw
        .edges
        .iter()
        .copied()
        .filter(|&(a, b)| !implied(a, b))
        .collect();
    (!all.doomed.is_empty(), edges)
}

/// A string that puts replace and appends extend, read whole.
struct Text;

#[derive(Clone, Debug)]
enum In {
    Put(String),
    Append(String),
    Get,
}

impl Model for Text {
    type State = String;
    type Input = In;
    type Output = Option<String>;
    fn init(&self) -> String {
        String::new()
    }
    fn step(&self, state: &String, input: &In, output: &Option<String>) -> Option<String> {
        match (input, output) {
            (In::Put(v), _) => Some(v.clone()),
            (In::Append(v), _) => Some(format!("{state}{v}")),
            (In::Get, Some(v)) => (v == state).then(|| state.clone()),
            (In::Get, None) => Some(state.clone()),
        }
    }
    fn describe(&self, input: &In, output: &Option<String>) -> String {
        format!("{input:?} -> {output:?}")
    }
    fn append_view<'a>(&self, input: &'a In, output: &'a Option<String>) -> Option<AppendView<'a>> {
        Some(match (input, output) {
            (In::Put(v), _) => AppendView::Put(v),
            (In::Append(v), _) => AppendView::Append(v),
            (In::Get, Some(v)) => AppendView::Read(v),
            (In::Get, None) => AppendView::Nothing,
        })
    }
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Random histories of `size` operations by `clients` clients: mostly sequential clients,
/// sometimes overlapping their own operations or returning before they call (malformed input
/// the checker must still treat consistently), values from a small alphabet so that splits are
/// sometimes unique and sometimes not, reads of plausible and implausible concatenations.
fn random_history(rng: &mut Lcg, size: u64, clients: u64) -> Vec<Operation<In, Option<String>>> {
    const VALUES: [&str; 7] = ["a", "b", "c", "ab", "", "bc", "d"];
    let mut h = Vec::new();
    let mut clock = vec![0u64; clients as usize];
    let mut written: Vec<String> = Vec::new();
    for _ in 0..size {
        let c = rng.below(clients);
        let call = clock[c as usize] + rng.below(4);
        let mut ret = call + rng.below(8);
        if rng.below(30) == 0 {
            ret = call.saturating_sub(1);
        }
        clock[c as usize] = if rng.below(10) == 0 { call } else { ret };
        let pending = rng.below(8) == 0;
        let v = VALUES[rng.below(VALUES.len() as u64) as usize].to_string();
        let (input, output) = match rng.below(6) {
            0 => (In::Put(v.clone()), None),
            1 | 2 => (In::Append(v.clone()), None),
            _ => {
                let mut s = String::new();
                for _ in 0..rng.below(4) {
                    match written.get(rng.below(written.len() as u64 + 1) as usize) {
                        Some(w) => s.push_str(w),
                        None => s.push_str(VALUES[rng.below(4) as usize]),
                    }
                }
                (In::Get, Some(s))
            }
        };
        if !matches!(input, In::Get) {
            written.push(v);
        }
        let ret = (!pending || matches!(input, In::Get)).then_some(ret);
        h.push(Operation {
            client: c,
            input,
            output,
            call,
            ret,
        });
    }
    h
}

#[test]
fn fast_inference_matches_the_reference() {
    let mut rng = Lcg(7);
    let mut outcomes = [0usize; 2];
    for round in 0..4000 {
        let size = 1 + rng.below(if round % 10 == 0 { 40 } else { 10 });
        let clients = 1 + rng.below(4);
        let h = random_history(&mut rng, size, clients);
        let ops: Vec<&Operation<In, Option<String>>> = h.iter().collect();
        let (fast_doomed, fast_edges) = fast(&Text, &ops);
        let (slow_doomed, slow_edges) = slow(&Text, &ops);
        assert_eq!(fast_doomed, slow_doomed, "doomed differs on {h:#?}");
        if !fast_doomed {
            assert_eq!(fast_edges, slow_edges, "edges differ on {h:#?}");
        }
        outcomes[fast_doomed as usize] += 1;
    }
    assert!(outcomes[0] > 500 && outcomes[1] > 500, "{outcomes:?}");
}
