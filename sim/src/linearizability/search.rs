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

use super::configs::Configs;
use super::constraints::{program_order, Constraints};
use super::hasher::BuildMixHasher;
use super::{append_infer, Budget, Model, Operation};
use indexmap::IndexSet;

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
///
/// The current configuration is a number in [`Configs`] (every configuration on the stack was
/// recorded there when it was reached), and model states are interned: a step clones no state
/// and a backtrack restores one by number.
pub(crate) struct Search<'h, M: Model> {
    ops: Vec<&'h Operation<M::Input, M::Output>>,
    completed: usize,
    list: EventList,
    /// Each operation's place in the order of configuration sets (see [`Configs`]): a
    /// completed operation's rank in return order, or `completed + index` if it never returned.
    code: Vec<u32>,
    configs: Configs,
    states: IndexSet<M::State, BuildMixHasher>,
    /// The current configuration, and its base and extra operations (copied out of `configs`).
    current: u32,
    base: u32,
    extra: Vec<u32>,
    /// The extra operations of a configuration being tried.
    scratch: Vec<u32>,
    /// Each frame: the call entry that was lifted and the configuration before it.
    stack: Vec<(u32, u32)>,
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
        constraints.finish();
        // A doomed partition's report needs the explaining search too.
        let inferred = added || !constraints.doomed.is_empty();
        let waiting = constraints.preds.clone();
        let completed = constraints.returned.iter().filter(|&&r| r).count();
        // Return events are in time order in the list, so their order there is the rank.
        let mut code = vec![NONE; ops.len()];
        let mut rank = 0u32;
        let mut e = entry;
        while e != NONE {
            if !list.is_call[e as usize] {
                code[list.op[e as usize] as usize] = rank;
                rank += 1;
            }
            e = list.next[e as usize];
        }
        for (i, c) in code.iter_mut().enumerate() {
            if *c == NONE {
                *c = (completed + i) as u32;
            }
        }
        let mut states = IndexSet::default();
        let (state, _) = states.insert_full(model.init());
        let mut configs = Configs::new();
        let current = configs
            .insert(0, &[], state as u32)
            .expect("the first configuration is new");
        Search {
            inferred,
            doomed: !constraints.doomed.is_empty(),
            constraints,
            waiting,
            completed,
            ops,
            list,
            code,
            configs,
            states,
            current,
            base: 0,
            extra: Vec::new(),
            scratch: Vec::new(),
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

    /// The base and extra operations (in `scratch`) of the current set plus operation `i`.
    #[inline]
    fn with_op(&mut self, i: usize) -> u32 {
        let code = self.code[i];
        self.scratch.clear();
        if code == self.base {
            // The first unlinearized completed operation: the base moves past it and past the
            // extra operations that follow it in return order without a gap.
            let mut base = self.base + 1;
            let mut k = 0;
            while self.extra.get(k) == Some(&base) {
                base += 1;
                k += 1;
            }
            self.scratch.extend_from_slice(&self.extra[k..]);
            base
        } else {
            let at = self.extra.partition_point(|&x| x < code);
            self.scratch.extend_from_slice(&self.extra[..at]);
            self.scratch.push(code);
            self.scratch.extend_from_slice(&self.extra[at..]);
            self.base
        }
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
        let mut entry = self.entry;
        let mut outcome = None;
        for _ in 0..slice {
            if budget.tick() {
                outcome = Some(Outcome::Unknown);
                break;
            }
            let at_call = entry != NONE && self.list.is_call[entry as usize];
            if at_call {
                let i = self.list.op[entry as usize] as usize;
                let op = self.ops[i];
                if self.waiting[i] > 0 {
                    entry = self.list.next[entry as usize];
                    continue;
                }
                let state = self.configs.get(self.current).state as usize;
                let current = &self.states[state];
                let next = match model.observe(current, &op.input, &op.output) {
                    Some(legal) => legal.then_some(state),
                    None => model
                        .step(current, &op.input, &op.output)
                        .map(|next_state| self.states.insert_full(next_state).0),
                };
                if let Some(state) = next {
                    let base = self.with_op(i);
                    if let Some(config) = self.configs.insert(base, &self.scratch, state as u32) {
                        let depth = self.stack.len();
                        if self.best_agrees == depth && self.best.get(depth) == Some(&i) {
                            self.best_agrees += 1;
                        }
                        self.stack.push((entry, self.current));
                        self.current = config;
                        self.base = base;
                        std::mem::swap(&mut self.extra, &mut self.scratch);
                        self.list.lift(entry);
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
                            let list = &self.list;
                            self.best.extend(
                                self.stack[self.best_agrees..]
                                    .iter()
                                    .map(|&(e, _)| list.op[e as usize] as usize),
                            );
                            self.best_agrees = self.stack.len();
                        }
                        debug_assert!(self.best_agrees <= self.stack.len().min(self.best.len()));
                        entry = self.list.next[HEAD as usize];
                        continue;
                    }
                }
                entry = self.list.next[entry as usize];
            } else {
                // A return event of an unlinearized operation (or the end of the list, which is
                // only reachable when just pending calls remain ahead): undo the latest choice.
                let Some((call, before)) = self.stack.pop() else {
                    outcome = Some(Outcome::NotLinearizable(std::mem::take(&mut self.best)));
                    break;
                };
                let i = self.list.op[call as usize] as usize;
                self.best_agrees = self.best_agrees.min(self.stack.len());
                for &j in &self.constraints.succs[i] {
                    self.waiting[j as usize] += 1;
                }
                self.current = before;
                self.base = self.configs.get(before).base;
                self.extra.clear();
                self.extra.extend_from_slice(self.configs.extra(before));
                if self.constraints.returned[i] {
                    self.linearized_completed -= 1;
                }
                self.list.unlift(call);
                entry = self.list.next[call as usize];
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
