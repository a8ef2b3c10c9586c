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
use super::{AppendView, Model, Operation};

/// The most splits worth counting: one means "unique", more means "ambiguous".
const MANY: u8 = 2;

const NONE: u32 = u32::MAX;

/// A byte trie of values, as flat arrays: the root's children are indexed by byte, the other
/// nodes' children are a first-child / next-sibling list (values are short and branch little).
struct Trie {
    root: Box<[u32; 256]>,
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
    byte: Vec<u8>,
    /// How many values end at each node, and the first operation (lowest index) among them.
    ends: Vec<u32>,
    first_end: Vec<u32>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            root: Box::new([NONE; 256]),
            first_child: vec![NONE],
            next_sibling: vec![NONE],
            byte: vec![0],
            ends: vec![0],
            first_end: vec![NONE],
        }
    }

    #[inline]
    fn child(&self, node: u32, b: u8) -> u32 {
        if node == 0 {
            return self.root[b as usize];
        }
        let mut c = self.first_child[node as usize];
        while c != NONE && self.byte[c as usize] != b {
            c = self.next_sibling[c as usize];
        }
        c
    }

    /// Inserts `value` for operation `op` (in increasing `op` order); returns its node.
    fn insert(&mut self, value: &[u8], op: usize) -> u32 {
        let mut node = 0u32;
        for &b in value {
            let next = self.child(node, b);
            node = if next != NONE {
                next
            } else {
                let new = self.byte.len() as u32;
                self.byte.push(b);
                self.ends.push(0);
                self.first_end.push(NONE);
                self.first_child.push(NONE);
                if node == 0 {
                    self.next_sibling.push(NONE);
                    self.root[b as usize] = new;
                } else {
                    self.next_sibling.push(self.first_child[node as usize]);
                    self.first_child[node as usize] = new;
                }
                new
            };
        }
        let n = node as usize;
        if self.ends[n] == 0 {
            self.first_end[n] = op as u32;
        }
        self.ends[n] += 1;
        node
    }

    /// Calls `f(length, node)` for every node on `text`'s path where a value ends (the root,
    /// length 0, included).
    #[inline]
    fn prefixes_of(&self, text: &[u8], mut f: impl FnMut(usize, u32)) {
        if self.ends[0] > 0 {
            f(0, 0);
        }
        let mut node = 0u32;
        for (k, &b) in text.iter().enumerate() {
            node = self.child(node, b);
            if node == NONE {
                return;
            }
            if self.ends[node as usize] > 0 {
                f(k + 1, node);
            }
        }
    }
}

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
    let mut t = Tables {
        ops,
        appends: Trie::new(),
        puts: Trie::new(),
        group_of_node: Vec::new(),
        groups: Vec::new(),
        group_of_op: vec![NONE; ops.len()],
        by_call: Vec::new(),
        calls: Vec::new(),
        mark: vec![0; ops.len()],
        splits: Vec::new(),
        step: Vec::new(),
        seq: Vec::new(),
    };
    for (i, v) in views.iter().enumerate() {
        match v {
            AppendView::Append(s) if !s.is_empty() => {
                t.appends.insert(s.as_bytes(), i);
                t.by_call.push(i as u32);
            }
            AppendView::Put(s) => {
                let node = t.puts.insert(s.as_bytes(), i) as usize;
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
                t.by_call.push(i as u32);
            }
            _ => {}
        }
    }
    for group in &mut t.groups {
        group
            .ops
            .sort_unstable_by_key(|&p| std::cmp::Reverse(ops[p as usize].ret));
    }
    t.by_call
        .sort_unstable_by_key(|&x| (ops[x as usize].call, x));
    t.calls = t.by_call.iter().map(|&x| ops[x as usize].call).collect();
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
    /// The inference for one read `g` that returned `r` (`stamp`: a number of its own, not
    /// zero). False if it doomed the partition.
    fn read(&mut self, g: usize, stamp: u32, r: &[u8], constraints: &mut Constraints) -> bool {
        let ops = self.ops;
        let n = r.len();
        // splits[i]: number of ways (capped at MANY) to cut r[i..] into append values, counting
        // each operation with that value; step[i]: the first cut (length, op) when there is one
        // way.
        self.splits.clear();
        self.splits.resize(n + 1, 0);
        self.step.clear();
        self.step.resize(n + 1, (0, 0));
        self.splits[n] = 1;
        for i in (0..n).rev() {
            let mut total = 0u8;
            let (splits, step, appends) = (&self.splits, &mut self.step, &self.appends);
            appends.prefixes_of(&r[i..], |len, node| {
                let ends = appends.ends[node as usize];
                let ways = (splits[i + len] as u32).saturating_mul(ends);
                if ways > 0 {
                    step[i] = (len as u32, appends.first_end[node as usize]);
                }
                total = (total as u32 + ways).min(MANY as u32) as u8;
            });
            self.splits[i] = total;
        }
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
        let read_ret = ops[g].ret.map_or(u64::MAX, |r| r.max(ops[g].call));
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
            let done = ops[x].ret.map(|r| r.max(ops[x].call));
            if done.is_some_and(|done| done < ops[g].call) {
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
