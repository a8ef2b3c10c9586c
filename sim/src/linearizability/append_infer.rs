//! What reads reveal about appends (the list-append inference of Jepsen's Elle, Kingsbury &
//! Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations", VLDB 2020:
//! "since every append is unique, a read of a list reveals the order of every append before it").
//!
//! For a model whose state is one string that puts replace and appends extend
//! ([`Model::append_view`]), the value a read returns is, in any linearization, the value of the
//! last put before it (or the initial empty string) followed by the values of the appends
//! between that put and the read, in linearization order. When the read's value splits that way
//! in exactly one way (counting operations, not values: two operations appending the same string
//! make every split using it ambiguous), every linearization agrees on it, and so:
//!
//! 1. the appends in the split precede one another in the split's order, and the last one (or
//!    the put, if no append follows it) precedes the read;
//! 2. if the prefix can only come from one put, that put precedes the first append of the split;
//! 3. any other write `x` is either before the prefix's put or after the read; when `x` cannot be
//!    before any candidate put (real time or program order puts it after each, or the prefix is
//!    the initial value), `x` follows the read.
//!
//! A read whose value splits in no way at all (or only by using one operation twice) can never
//! be linearized, which dooms its partition. Reads with several splits teach nothing and are
//! left to the search. Empty appends change nothing and are ignored.

use super::constraints::{must_precede, Constraints};
use super::{AppendView, Model, Operation};
use std::collections::BTreeMap;

/// The most splits worth counting: one means "unique", more means "ambiguous".
const MANY: u64 = 2;

/// A byte trie of the append values; each node lists the appends whose value ends there.
struct Trie {
    children: Vec<BTreeMap<u8, u32>>,
    ends: Vec<Vec<u32>>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            children: vec![BTreeMap::new()],
            ends: vec![Vec::new()],
        }
    }

    fn insert(&mut self, value: &[u8], op: usize) {
        let mut node = 0usize;
        for &b in value {
            node = match self.children[node].get(&b) {
                Some(&next) => next as usize,
                None => {
                    let next = self.children.len();
                    self.children.push(BTreeMap::new());
                    self.ends.push(Vec::new());
                    self.children[node].insert(b, next as u32);
                    next
                }
            };
        }
        self.ends[node].push(op as u32);
    }

    /// Calls `f(length, ops)` for every append value that is a prefix of `text`.
    fn prefixes_of(&self, text: &[u8], mut f: impl FnMut(usize, &[u32])) {
        let mut node = 0usize;
        for (k, b) in text.iter().enumerate() {
            match self.children[node].get(b) {
                Some(&next) => node = next as usize,
                None => return,
            }
            if !self.ends[node].is_empty() {
                f(k + 1, &self.ends[node]);
            }
        }
    }
}

/// Adds the constraints that the partition's reads imply (see the module doc). Does nothing
/// unless every operation has an [`AppendView`].
pub(crate) fn infer<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    constraints: &mut Constraints,
) {
    let mut views = Vec::with_capacity(ops.len());
    for op in ops {
        match model.append_view(&op.input, &op.output) {
            Some(v) => views.push(v),
            None => return,
        }
    }
    let mut trie = Trie::new();
    let mut puts: Vec<(usize, &[u8])> = Vec::new();
    let mut writes: Vec<usize> = Vec::new();
    for (i, v) in views.iter().enumerate() {
        match v {
            AppendView::Append(s) if !s.is_empty() => {
                trie.insert(s.as_bytes(), i);
                writes.push(i);
            }
            AppendView::Put(s) => {
                puts.push((i, s.as_bytes()));
                writes.push(i);
            }
            _ => {}
        }
    }
    for (g, v) in views.iter().enumerate() {
        if let AppendView::Read(r) = v {
            read(ops, &trie, &puts, &writes, g, r.as_bytes(), constraints);
        }
    }
}

/// The inference for one read `g` that returned `r`.
fn read<I, O>(
    ops: &[&Operation<I, O>],
    trie: &Trie,
    puts: &[(usize, &[u8])],
    writes: &[usize],
    g: usize,
    r: &[u8],
    constraints: &mut Constraints,
) {
    let n = r.len();
    // splits[i]: number of ways (capped at MANY) to cut r[i..] into append values, counting
    // each operation with that value; step[i]: the first cut (length, op) when there is one way.
    let mut splits = vec![0u64; n + 1];
    let mut step = vec![(0usize, 0u32); n + 1];
    splits[n] = 1;
    for i in (0..n).rev() {
        let mut total = 0u64;
        trie.prefixes_of(&r[i..], |len, ends| {
            let ways = splits[i + len].saturating_mul(ends.len() as u64);
            if ways > 0 {
                step[i] = (len, ends[0]);
            }
            total = total.saturating_add(ways).min(MANY);
        });
        splits[i] = total;
    }
    // The possible prefixes: the initial value (length 0) and every put whose value starts r.
    // Candidates with the same length share the same split of the rest.
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
        .fold(0u64, |a, b| a.saturating_add(b).min(MANY));
    if ways == 0 {
        constraints.doom(g);
        return;
    }
    if ways > 1 {
        return;
    }
    let Some(&len) = lengths.iter().find(|&&l| splits[l] == 1) else {
        return;
    };
    let mut seq: Vec<usize> = Vec::new();
    let mut at = len;
    while at < n {
        let (l, op) = step[at];
        seq.push(op as usize);
        at += l;
    }
    let mut in_seq = vec![false; ops.len()];
    for &a in &seq {
        if std::mem::replace(&mut in_seq[a], true) {
            // The only split uses one operation twice: no linearization can explain the read.
            constraints.doom(g);
            return;
        }
    }
    // The operations the prefix may come from (`None`: the initial value).
    let mut candidates: Vec<Option<usize>> = Vec::new();
    if len == 0 {
        candidates.push(None);
    }
    candidates.extend(
        puts.iter()
            .filter(|(_, v)| v.len() == len && r.starts_with(v))
            .map(|&(p, _)| Some(p)),
    );
    // Rule 1: the split's order, then the read.
    for pair in seq.windows(2) {
        constraints.add(pair[0], pair[1]);
    }
    if let Some(&last) = seq.last() {
        constraints.add(last, g);
    }
    // Rule 2: a single put as the prefix precedes the split (or the read).
    if let [Some(p)] = candidates[..] {
        constraints.add(p, seq.first().copied().unwrap_or(g));
    }
    // Rule 3: a write outside the split and the candidates that cannot precede any candidate.
    for &x in writes {
        if in_seq[x] || candidates.contains(&Some(x)) {
            continue;
        }
        let after_all = candidates.iter().all(|c| match *c {
            None => true,
            Some(p) => must_precede(ops, p, x),
        });
        if after_all {
            constraints.add(g, x);
        }
    }
}
