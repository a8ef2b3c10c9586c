//! Precedence constraints for the search: "operation `x` must be linearized before `y`".
//!
//! A constraint is only ever added when it holds in *every* linearization of the partition, so
//! the search may refuse any order that breaks one without losing a linearization. Two sources:
//! per-client program order (here) and what reads reveal about list appends
//! ([`super::append_infer`]). The graph is also examined up front: a completed operation that can
//! never be linearized (it sits on or after a cycle, or must follow an operation called after its
//! own return) dooms the partition.
//!
//! An edge that real time already implies (`x` returned before `y` was called) is not stored:
//! the search never linearizes `y` before `x` anyway (it backtracks at `x`'s return event), and
//! such edges are most of what program order and the inference produce on long histories (a
//! read's rule-3 edges alone would be quadratic in the partition's length). Dropping them
//! changes no verdict, nor whether the partition is doomed: such an edge `x -> y` only pushes
//! `y`'s earliest time past `y`'s return if `x`'s is already past `x`'s return (`x` is doomed),
//! and on a cycle through such edges some operation returns before its own earliest time.
//! (`tests_infer_reference` checks this against the unfiltered constraints.)

use super::Operation;

/// Constraints over the operations of one partition (indices into its operation slice).
#[derive(Clone, Debug, Default)]
pub(crate) struct Constraints {
    /// For each operation, the operations that must be linearized right after it may be.
    pub(crate) succs: Vec<Vec<u32>>,
    /// For each operation, how many operations must be linearized before it.
    pub(crate) preds: Vec<u32>,
    /// Completed operations no linearization can contain: the partition is not linearizable.
    pub(crate) doomed: Vec<usize>,
    /// Edges stored by [`Constraints::add`] so far (duplicates included).
    pub(crate) added: usize,
    /// Each operation's call time and the time of its return event (at least the call;
    /// `u64::MAX` if it never returned), as the search's event list orders them.
    /// (Kept here as compact arrays because the operations themselves are scattered over the
    /// whole history: every pass that loads them is a cache miss per operation.)
    pub(crate) call: Vec<u64>,
    pub(crate) ret: Vec<u64>,
    /// Whether each operation returned.
    pub(crate) returned: Vec<bool>,
}

impl Constraints {
    pub(crate) fn new<I, O>(ops: &[&Operation<I, O>]) -> Self {
        let n = ops.len();
        let mut call = Vec::with_capacity(n);
        let mut ret = Vec::with_capacity(n);
        let mut returned = Vec::with_capacity(n);
        for o in ops {
            call.push(o.call);
            ret.push(o.ret.map_or(u64::MAX, |r| r.max(o.call)));
            returned.push(o.ret.is_some());
        }
        Constraints {
            succs: vec![Vec::new(); n],
            preds: vec![0; n],
            doomed: Vec::new(),
            added: 0,
            call,
            ret,
            returned,
        }
    }

    /// Records that `before` must be linearized before `after`, unless real time says so
    /// already (duplicates are dropped later).
    pub(crate) fn add(&mut self, before: usize, after: usize) {
        if self.ret[before] < self.call[after] {
            return;
        }
        self.succs[before].push(after as u32);
        self.added += 1;
    }

    /// Records a completed operation that no linearization can contain.
    pub(crate) fn doom(&mut self, op: usize) {
        self.doomed.push(op);
    }

    /// Deduplicates the edges, counts predecessors and dooms the completed operations that can
    /// never be linearized (see the module doc).
    pub(crate) fn finish(&mut self) {
        for s in &mut self.succs {
            s.sort_unstable();
            s.dedup();
        }
        self.preds.iter_mut().for_each(|p| *p = 0);
        for s in &self.succs {
            for &j in s {
                self.preds[j as usize] += 1;
            }
        }
        // Kahn's topological order; `earliest[i]` is the latest call time among `i` and all its
        // ancestors: `i` can only be linearized at or after it.
        let n = self.call.len();
        let mut waiting = self.preds.clone();
        let mut earliest = self.call.clone();
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut placed = vec![false; n];
        while let Some(i) = ready.pop() {
            placed[i] = true;
            for &j in &self.succs[i] {
                let j = j as usize;
                earliest[j] = earliest[j].max(earliest[i]);
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(j);
                }
            }
        }
        for i in 0..n {
            if !self.returned[i] {
                continue;
            }
            // Calls come before returns at equal times, so `earliest == ret` is still possible.
            if !placed[i] || earliest[i] > self.ret[i] {
                self.doomed.push(i);
            }
        }
        self.doomed.sort_unstable();
        self.doomed.dedup();
    }
}

/// Per-client program order: a client issues its operations one at a time, so each operation
/// that returned precedes the same client's next operation, whatever the timestamps say (a client
/// typically invokes its next operation in the very instant its previous one returned). An
/// operation that never returned constrains nothing: its client gave up on it, and it may still
/// take effect at any later time (Jepsen gives such a process a fresh id for the same reason).
///
/// A client's operations are ordered by call time, then by position in the history.
pub(crate) fn program_order<I, O>(ops: &[&Operation<I, O>], constraints: &mut Constraints) {
    let mut by_client: Vec<(u64, u64, usize)> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| (o.client, o.call, i))
        .collect();
    by_client.sort_unstable();
    // The last returned operation of the current client so far.
    let mut last: Option<(u64, usize)> = None;
    for &(client, _, i) in &by_client {
        if let Some((c, prev)) = last {
            if c == client {
                constraints.add(prev, i);
            }
        }
        if constraints.returned[i] {
            last = Some((client, i));
        } else if last.is_some_and(|(c, _)| c != client) {
            last = None;
        }
    }
}

/// True if `x` precedes `y` in every linearization by real time or program order alone: `x`
/// returned strictly before `y` was called, or `x` returned and is an earlier operation of the
/// same client (`x < y` as indices breaks call-time ties, as in [`program_order`]).
pub(crate) fn must_precede<I, O>(ops: &[&Operation<I, O>], x: usize, y: usize) -> bool {
    let (a, b) = (ops[x], ops[y]);
    let Some(ret) = a.ret else { return false };
    ret < b.call || (a.client == b.client && (a.call, x) < (b.call, y))
}
