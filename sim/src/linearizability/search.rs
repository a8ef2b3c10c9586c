//! Just-in-time linearization search (Wing & Gong, with Lowe's memoization of
//! `(linearized set, model state)` configurations) over one partition of a history.
//!
//! The history is turned into a list of call and return events sorted by time. The search walks
//! that list from the front: at a call event it tries to linearize the operation right now (apply
//! it to the model); if the model accepts and the resulting configuration was never seen before,
//! both events of the operation are lifted out of the list and the walk restarts from the front.
//! Reaching a return event whose operation is still unlinearized means that the choices made so
//! far cannot be extended, so the most recent choice is undone (its events are put back) and the
//! walk resumes just after it. Operations that never returned have no return event, so they never
//! force a backtrack: they may be linearized at any point after their call, or left out.
//!
//! On top of real time, the walk honours the partition's [`Constraints`] (program order and what
//! reads reveal about appends): a call whose operation still waits for a predecessor is passed
//! over. A partition the constraints already doom is not searched at all.

use super::bitset::{Bitset, BuildMixHasher};
use super::constraints::{program_order, Constraints};
use super::{append_infer, Budget, Model, Operation};
use indexmap::{Equivalent, IndexSet};

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;

/// Result of searching one partition. Orders are indices into the partition's operation slice.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A complete linearization: every completed operation, plus the pending ones it uses.
    Linearizable(Vec<usize>),
    /// No linearization exists; the longest linearizable prefix that was found.
    NotLinearizable(Vec<usize>),
    /// The budget ran out.
    Unknown,
}

#[derive(Hash, PartialEq, Eq)]
struct CacheKey<S> {
    bits: Bitset,
    state: S,
}

#[derive(Hash)]
struct CacheRef<'a, S> {
    bits: &'a Bitset,
    state: &'a S,
}

impl<S: Eq> Equivalent<CacheKey<S>> for CacheRef<'_, S> {
    fn equivalent(&self, key: &CacheKey<S>) -> bool {
        *self.bits == key.bits && *self.state == key.state
    }
}

/// The event list: entry 0 is the head sentinel, entries `1..` are events in time order.
struct EventList {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Operation of each entry (unused for the head).
    op: Vec<u32>,
    /// Whether each entry is a call event.
    is_call: Vec<bool>,
    /// For each operation, the entry of its return event, or NONE if it never returned.
    ret_entry: Vec<u32>,
}

impl EventList {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Self {
        // (time, kind, op): calls sort before returns at equal times, so operations that merely
        // touch are treated as concurrent (the permissive reading).
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, 0, i as u32));
            if let Some(ret) = op.ret {
                events.push((ret.max(op.call), 1, i as u32));
            }
        }
        events.sort_unstable();
        let n = events.len() + 1;
        let mut list = EventList {
            next: Vec::with_capacity(n),
            prev: Vec::with_capacity(n),
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            ret_entry: vec![NONE; ops.len()],
        };
        list.next.push(if events.is_empty() { NONE } else { 1 });
        list.prev.push(NONE);
        list.op.push(NONE);
        list.is_call.push(false);
        for (k, &(_, kind, op)) in events.iter().enumerate() {
            let entry = (k + 1) as u32;
            list.prev.push(entry - 1);
            list.next.push(if k + 1 == events.len() {
                NONE
            } else {
                entry + 1
            });
            list.op.push(op);
            list.is_call.push(kind == 0);
            if kind == 1 {
                list.ret_entry[op as usize] = entry;
            }
        }
        list
    }

    #[inline]
    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    #[inline]
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NONE {
            self.prev[n as usize] = e;
        }
    }

    /// Removes a call entry and its return entry (if any) from the list.
    #[inline]
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.ret_entry[self.op[call as usize] as usize];
        if ret != NONE {
            self.unlink(ret);
        }
    }

    /// Exactly undoes the matching `lift` (lifts and unlifts are strictly nested).
    #[inline]
    fn unlift(&mut self, call: u32) {
        let ret = self.ret_entry[self.op[call as usize] as usize];
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// The search over one partition, resumable so that partitions can be interleaved: a partition
/// that is hard to decide should not delay finding that another one is not linearizable.
pub(crate) struct Search<'h, M: Model> {
    ops: Vec<&'h Operation<M::Input, M::Output>>,
    completed: usize,
    list: EventList,
    cache: IndexSet<CacheKey<M::State>, BuildMixHasher>,
    bits: Bitset,
    state: M::State,
    /// Each frame: the call entry that was lifted and the state before it was applied.
    stack: Vec<(u32, M::State)>,
    linearized_completed: usize,
    /// The deepest stack reached so far, as operations (the explanation of a failure).
    best: Vec<usize>,
    /// How many bottom frames of `stack` are also the first entries of `best`. Keeping it
    /// lets a new depth extend `best` from there instead of copying the whole stack each
    /// time, which made long partitions quadratic.
    best_agrees: usize,
    entry: u32,
    constraints: Constraints,
    /// Per operation, how many of its predecessors are not linearized yet.
    waiting: Vec<u32>,
    /// The constraints doom the partition: it is not linearizable.
    doomed: bool,
    /// Whether the inference about appends added anything to program order, or the partition
    /// is doomed without a search.
    inferred: bool,
}

impl<'h, M: Model> Search<'h, M> {
    /// A search that honours program order and, if `infer`, what reads reveal about appends.
    pub(crate) fn new(
        model: &M,
        ops: Vec<&'h Operation<M::Input, M::Output>>,
        infer: bool,
    ) -> Self {
        let list = EventList::new(&ops);
        let entry = list.next[HEAD as usize];
        let mut constraints = Constraints::new(&ops);
        program_order(&ops, &mut constraints);
        let before = constraints.added;
        if infer {
            append_infer::infer(model, &ops, &mut constraints);
        }
        let added = constraints.added != before;
        constraints.finish(&ops);
        // A doomed partition's report needs the explaining search too.
        let inferred = added || !constraints.doomed.is_empty();
        let waiting = constraints.preds.clone();
        Search {
            inferred,
            doomed: !constraints.doomed.is_empty(),
            constraints,
            waiting,
            completed: ops.iter().filter(|o| o.ret.is_some()).count(),
            bits: Bitset::new(ops.len()),
            ops,
            list,
            cache: IndexSet::default(),
            state: model.init(),
            stack: Vec::new(),
            linearized_completed: 0,
            best: Vec::new(),
            best_agrees: 0,
            entry,
        }
    }

    fn order(&self) -> Vec<usize> {
        self.stack
            .iter()
            .map(|&(e, _)| self.list.op[e as usize] as usize)
            .collect()
    }

    /// Runs at most `slice` steps. `None`: undecided yet, call again; `Some(Outcome::Unknown)`:
    /// the budget ran out.
    pub(crate) fn run(
        &mut self,
        model: &M,
        budget: &mut Budget<'_>,
        slice: u64,
    ) -> Option<Outcome> {
        if self.doomed {
            return Some(Outcome::NotLinearizable(Vec::new()));
        }
        if self.linearized_completed == self.completed {
            return Some(Outcome::Linearizable(self.order()));
        }
        let list = &mut self.list;
        let mut entry = self.entry;
        let mut outcome = None;
        for _ in 0..slice {
            if budget.tick() {
                outcome = Some(Outcome::Unknown);
                break;
            }
            let at_call = entry != NONE && list.is_call[entry as usize];
            if at_call {
                let i = list.op[entry as usize] as usize;
                let op = self.ops[i];
                if self.waiting[i] > 0 {
                    entry = list.next[entry as usize];
                    continue;
                }
                if let Some(next_state) = model.step(&self.state, &op.input, &op.output) {
                    self.bits.set(i);
                    let seen = self.cache.contains(&CacheRef {
                        bits: &self.bits,
                        state: &next_state,
                    });
                    if !seen {
                        self.cache.insert(CacheKey {
                            bits: self.bits.clone(),
                            state: next_state.clone(),
                        });
                        let before = std::mem::replace(&mut self.state, next_state);
                        let depth = self.stack.len();
                        if self.best_agrees == depth && self.best.get(depth) == Some(&i) {
                            self.best_agrees += 1;
                        }
                        self.stack.push((entry, before));
                        list.lift(entry);
                        for &j in &self.constraints.succs[i] {
                            self.waiting[j as usize] -= 1;
                        }
                        if op.ret.is_some() {
                            self.linearized_completed += 1;
                            if self.linearized_completed == self.completed {
                                break;
                            }
                        }
                        if self.stack.len() > self.best.len() {
                            self.best.truncate(self.best_agrees);
                            self.best.extend(
                                self.stack[self.best_agrees..]
                                    .iter()
                                    .map(|&(e, _)| list.op[e as usize] as usize),
                            );
                            self.best_agrees = self.stack.len();
                        }
                        debug_assert!(self.best_agrees <= self.stack.len().min(self.best.len()));
                        entry = list.next[HEAD as usize];
                        continue;
                    }
                    self.bits.clear(i);
                }
                entry = list.next[entry as usize];
            } else {
                // A return event of an unlinearized operation (or the end of the list, which is
                // only reachable when just pending calls remain ahead): undo the latest choice.
                let Some((call, before)) = self.stack.pop() else {
                    outcome = Some(Outcome::NotLinearizable(std::mem::take(&mut self.best)));
                    break;
                };
                let i = list.op[call as usize] as usize;
                self.best_agrees = self.best_agrees.min(self.stack.len());
                for &j in &self.constraints.succs[i] {
                    self.waiting[j as usize] += 1;
                }
                self.bits.clear(i);
                self.state = before;
                if self.ops[i].ret.is_some() {
                    self.linearized_completed -= 1;
                }
                list.unlift(call);
                entry = list.next[call as usize];
            }
        }
        self.entry = entry;
        if outcome.is_none() && self.linearized_completed == self.completed {
            outcome = Some(Outcome::Linearizable(self.order()));
        }
        outcome
    }

    /// Whether inferred constraints (beyond program order) took part in the verdict.
    pub(crate) fn inferred(&self) -> bool {
        self.inferred
    }

    /// The longest linearizable prefix found so far.
    pub(crate) fn best(&self) -> &[usize] {
        &self.best
    }

    /// The partition's operations.
    pub(crate) fn ops(&self) -> &[&'h Operation<M::Input, M::Output>] {
        &self.ops
    }
}
