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
//!
//! Cost: each read costs time in proportion to its value's length plus the writes that overlap
//! it in real time, not to the partition's length. Rule 3 only looks at writes called before
//! the read returned (a write called later follows it by real time already, which
//! [`Constraints::add`] drops) and after every candidate put could have returned. A rule-3
//! write that returned before the read was called dooms the partition, and once it is doomed
//! the inference stops: the search will not run.

use super::constraints::{must_precede, Constraints};
use super::trie::Trie;
use super::{AppendView, Model, Operation};

/// The most splits worth counting: one means "unique", more means "ambiguous".
const MANY: u8 = 2;

const NONE: u32 = u32::MAX;

/// The puts of one value: what rule 3 needs to know about them as candidate prefixes.
struct PutGroup {
    /// The puts, latest return first.
    ops: Vec<u32>,
    /// Some put never returned (so nothing is known to follow it).
    pending: bool,
    /// The latest return among the puts.
    max_ret: u64,
    /// A write called before this cannot follow every put (see [`bound`]).
    lo_call: u64,
}

/// The earliest call time of a write `x` with `must_precede(p, x)`: after `p` returned, or at
/// `p`'s call for the same client.
fn bound<I, O>(p: &Operation<I, O>) -> u64 {
    let ret = p.ret.unwrap_or(u64::MAX);
    ret.saturating_add(1).min(p.call)
}

/// The inference's tables over one partition.
struct Tables<'o, I, O> {
    ops: &'o [&'o Operation<I, O>],
    appends: Trie,
    puts: Trie,
    /// Per node of `puts` with puts ending there, its group.
    group_of_node: Vec<u32>,
    groups: Vec<PutGroup>,
    /// Per operation, the group of a put (`NONE` for other operations).
    group_of_op: Vec<u32>,
    /// The writes (puts and non-empty appends) by call time, and their call times.
    by_call: Vec<u32>,
    calls: Vec<u64>,
    /// Scratch for each read: marks the split's appends with the read's number + 1.
    mark: Vec<u32>,
    splits: Vec<u8>,
    step: Vec<(u32, u32)>,
    seq: Vec<usize>,
    /// The read value that `splits` and `step` were last filled for, if `dp_valid`.
    dp_for: Vec<u8>,
    dp_valid: bool,
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
    let mut appends = Vec::new();
    let mut puts = Vec::new();
    let mut by_call = Vec::new();
    for (i, v) in views.iter().enumerate() {
        match v {
            AppendView::Append(s) if !s.is_empty() => {
                appends.push((s.as_bytes(), i as u32));
                by_call.push(i as u32);
            }
            AppendView::Put(s) => {
                puts.push((s.as_bytes(), i as u32));
                by_call.push(i as u32);
            }
            _ => {}
        }
    }
    let mut t = Tables {
        ops,
        appends: Trie::build(appends),
        puts: Trie::build(puts),
        group_of_node: Vec::new(),
        groups: Vec::new(),
        group_of_op: vec![NONE; ops.len()],
        by_call,
        calls: Vec::new(),
        mark: vec![0; ops.len()],
        splits: Vec::new(),
        step: Vec::new(),
        seq: Vec::new(),
        dp_for: Vec::new(),
        dp_valid: false,
    };
    for (i, v) in views.iter().enumerate() {
        let AppendView::Put(s) = v else { continue };
        let node = t.puts.find(s.as_bytes()).expect("every put is in the trie") as usize;
        if t.group_of_node.len() <= node {
            t.group_of_node.resize(node + 1, NONE);
        }
        if t.group_of_node[node] == NONE {
            t.group_of_node[node] = t.groups.len() as u32;
            t.groups.push(PutGroup {
                ops: Vec::new(),
                pending: false,
                max_ret: 0,
                lo_call: 0,
            });
        }
        let g = t.group_of_node[node];
        let group = &mut t.groups[g as usize];
        group.ops.push(i as u32);
        group.pending |= ops[i].ret.is_none();
        group.max_ret = group.max_ret.max(ops[i].ret.unwrap_or(0));
        group.lo_call = group.lo_call.max(bound(ops[i]));
        t.group_of_op[i] = g;
    }
    for group in &mut t.groups {
        group
            .ops
            .sort_unstable_by_key(|&p| std::cmp::Reverse(ops[p as usize].ret));
    }
    let call = &constraints.call;
    t.by_call.sort_unstable_by_key(|&x| (call[x as usize], x));
    t.calls = t.by_call.iter().map(|&x| call[x as usize]).collect();
    let mut reads = 0u32;
    for (g, v) in views.iter().enumerate() {
        if let AppendView::Read(r) = v {
            reads += 1;
            if !t.read(g, reads, r.as_bytes(), constraints) {
                // Doomed: the search will not run, so nothing else is worth knowing.
                return;
            }
        }
    }
}

impl<I, O> Tables<'_, I, O> {
    /// Fills the split tables for the read value `r`: `splits[i]`, the number of ways (capped
    /// at MANY) to cut `r[i..]` into append values, counting each operation with that value;
    /// `step[i]`, the first cut (length, op) when there is one way.
    fn split_table(&mut self, r: &[u8]) {
        let n = r.len();
        self.splits.clear();
        self.splits.resize(n + 1, 0);
        self.step.clear();
        self.step.resize(n + 1, (0, 0));
        self.splits[n] = 1;
        for i in (0..n).rev() {
            let mut total = 0u8;
            let (splits, step, appends) = (&self.splits, &mut self.step, &self.appends);
            appends.prefixes_of(&r[i..], |len, node| {
                let ends = appends.ends(node);
                let ways = (splits[i + len] as u32).saturating_mul(ends);
                if ways > 0 {
                    step[i] = (len as u32, appends.first_end(node));
                }
                total = (total as u32 + ways).min(MANY as u32) as u8;
            });
            self.splits[i] = total;
        }
    }

    /// The inference for one read `g` that returned `r` (`stamp`: a number of its own, not
    /// zero). False if it doomed the partition.
    fn read(&mut self, g: usize, stamp: u32, r: &[u8], constraints: &mut Constraints) -> bool {
        let ops = self.ops;
        let n = r.len();
        // The split tables depend on r alone, and a read often returns what the partition's
        // previous read did (no write between them): then they are already there.
        if !(self.dp_valid && self.dp_for == r) {
            self.split_table(r);
            self.dp_for.clear();
            self.dp_for.extend_from_slice(r);
            self.dp_valid = true;
        }
        debug_assert_eq!(self.splits.len(), n + 1);
        // The possible prefixes: the initial value (length 0) and every put whose value starts
        // r. Candidates with the same length share the same split of the rest.
        let mut ways = self.splits[0];
        let mut unique: Option<(usize, u32)> = (self.splits[0] == 1).then_some((0, NONE));
        let puts = &self.puts;
        let (splits, group_of_node) = (&self.splits, &self.group_of_node);
        puts.prefixes_of(r, |len, node| {
            let s = splits[len];
            if len > 0 {
                ways = (ways + s).min(MANY);
            }
            if s == 1 {
                let group = group_of_node[node as usize];
                match &mut unique {
                    Some((0, g)) if len == 0 => *g = group,
                    _ => unique = Some((len, group)),
                }
            }
        });
        if ways == 0 {
            constraints.doom(g);
            return false;
        }
        if ways > 1 {
            return true;
        }
        // One way: the prefix of length `len`, from the initial value (if `len` is 0) or one
        // of the puts of `group`.
        let Some((len, group)) = unique else {
            return true;
        };
        self.seq.clear();
        let mut at = len;
        while at < n {
            let (l, op) = self.step[at];
            if std::mem::replace(&mut self.mark[op as usize], stamp) == stamp {
                // The only split uses one operation twice: no linearization can explain the read.
                constraints.doom(g);
                return false;
            }
            self.seq.push(op as usize);
            at += l as usize;
        }
        let group_index = group;
        let group = (group != NONE).then(|| &self.groups[group as usize]);
        let initial = len == 0;
        // Rule 1: the split's order, then the read.
        for pair in self.seq.windows(2) {
            constraints.add(pair[0], pair[1]);
        }
        if let Some(&last) = self.seq.last() {
            constraints.add(last, g);
        }
        // Rule 2: a single put as the prefix precedes the split (or the read).
        if let (false, Some(group)) = (initial, group) {
            if let [p] = group.ops[..] {
                constraints.add(p as usize, self.seq.first().copied().unwrap_or(g));
            }
        }
        // Rule 3: a write outside the split and the candidates that cannot precede any
        // candidate follows the read. A pending candidate put may precede anything.
        if group.is_some_and(|group| group.pending) {
            return true;
        }
        // Times from the constraints' compact arrays: the operations themselves are scattered
        // over the whole history, and loading them was most of this loop's cost.
        let (read_call, read_ret) = (constraints.call[g], constraints.ret[g]);
        let lo_call = group.map_or(0, |group| group.lo_call);
        let lo = self.calls.partition_point(|&c| c < lo_call);
        let hi = self.calls.partition_point(|&c| c <= read_ret);
        for &x in &self.by_call[lo.min(hi)..hi] {
            let x = x as usize;
            if self.mark[x] == stamp {
                continue;
            }
            if let Some(group) = group {
                if self.group_of_op[x] == group_index || !x_follows_all(ops, group, x) {
                    continue;
                }
            }
            if constraints.ret[x] < read_call {
                // x returned before the read was called, yet must follow it.
                constraints.doom(x);
                return false;
            }
            constraints.add(g, x);
        }
        true
    }
}

/// Whether every put of `group` must precede write `x` (none of them is pending). Only the
/// puts that returned at or after x's call can fail to.
fn x_follows_all<I, O>(ops: &[&Operation<I, O>], group: &PutGroup, x: usize) -> bool {
    let call = ops[x].call;
    if call > group.max_ret {
        return true;
    }
    group
        .ops
        .iter()
        .take_while(|&&p| ops[p as usize].ret.is_some_and(|r| r >= call))
        .all(|&p| must_precede(ops, p as usize, x))
}
