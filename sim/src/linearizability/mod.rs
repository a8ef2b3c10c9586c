//! Linearizability checking of concurrent histories against a sequential model.
//!
//! A history is a list of [`Operation`]s, each with the virtual times of its call and (if it
//! completed) its return. [`check`] splits the history into independent partitions with
//! [`Model::partition_key`] (linearizability is compositional: a history is linearizable iff each
//! per-object sub-history is), and searches each partition for a linearization with the
//! just-in-time algorithm of Wing & Gong as improved by Lowe (memoizing already explored
//! `(set of linearized operations, model state)` configurations).
//!
//! Each client's operations are sequential (program order): an operation that returned is
//! linearized before the same client's next operation even when the timestamps touch. The search
//! also honours what reads reveal about appends ([`Model::append_view`]), which prunes histories
//! of many concurrent appends from exponential to near-linear work.
//!
//! Operations that never returned (`ret: None`) may take effect at any point after their call, or
//! not at all. The search is bounded by a [`Budget`]: when it runs out the verdict is
//! [`Verdict::Unknown`]; `Linearizable` is only ever returned with a linearization in hand.
//!
//! This module is clock-free: callers that want a wall-clock limit pass a `should_stop` closure.

mod append_infer;
mod configs;
mod constraints;
mod hasher;
mod report;
mod search;
mod trie;

pub use report::{OpSummary, PartitionReport, PartitionSummary, Report, StuckOp};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A sequential specification of the object whose history is checked.
pub trait Model {
    /// The object's state. Hashed and compared to memoize explored configurations.
    type State: Clone + Eq + std::hash::Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug;

    /// The initial state.
    fn init(&self) -> Self::State;

    /// Applies `input` with its observed `output`; `Some(next state)` if that is legal in `state`.
    /// Operations that never returned carry whatever output value means "unknown" for the model,
    /// which `step` must accept (such an operation may have taken effect or not; placing it
    /// last in a linearization is the same as it never taking effect).
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// A shortcut for operations that only observe the state (reads): `Some(legal)` if
    /// `step` would return `Some(state unchanged)` exactly when `legal`, `None` (the default)
    /// if the operation may change the state or the model does not say. The search then keeps
    /// the current state instead of cloning it and looking the copy up in its memo.
    fn observe(
        &self,
        _state: &Self::State,
        _input: &Self::Input,
        _output: &Self::Output,
    ) -> Option<bool> {
        None
    }

    /// Splits a history into independent sub-histories (P-compositionality), e.g. per key.
    /// If every operation has `Some(key)`, operations with equal keys form one partition and the
    /// state passed to `step` only ever sees that partition's operations. If any operation
    /// returns `None`, the whole history is checked as one partition.
    fn partition_key(&self, _input: &Self::Input) -> Option<String> {
        None
    }

    /// A short human-readable description of an operation, e.g. `get("k") -> "abc"`.
    fn describe(&self, input: &Self::Input, output: &Self::Output) -> String;

    /// How the operation acts on a state that is one string, which puts replace, appends extend
    /// and reads return whole. A model of that shape that answers for every operation lets the
    /// search use what reads reveal about the order of appends (see [`AppendView`]); the default,
    /// `None`, turns that off.
    fn append_view<'a>(
        &self,
        _input: &'a Self::Input,
        _output: &'a Self::Output,
    ) -> Option<AppendView<'a>> {
        None
    }
}

/// An operation seen as an action on a string state (for [`Model::append_view`]). The contract:
/// in every state, `step` of a `Put(v)` leads to `v`, of an `Append(v)` to the state followed by
/// `v`, a `Read(v)` is legal exactly when the state is `v` and leaves it unchanged, and a
/// `Nothing` is always legal and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendView<'a> {
    /// Replaces the state (a pending put too: it may or may not take effect).
    Put(&'a str),
    /// Extends the state (a pending append too).
    Append(&'a str),
    /// Returned the whole state.
    Read(&'a str),
    /// Neither changes nor observes the state (e.g. a read that never returned).
    Nothing,
}

/// One operation of a concurrent history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation<I, O> {
    /// The client (process) that issued the operation.
    pub client: u64,
    pub input: I,
    /// The observed output; for an operation that never returned, the model's "unknown" value.
    pub output: O,
    /// Virtual time of the call.
    pub call: u64,
    /// Virtual time of the return; `None` if it never returned (outcome unknown). A return time
    /// earlier than the call is treated as equal to the call.
    pub ret: Option<u64>,
}

/// The outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The budget ran out before the search could decide.
    Unknown,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown",
        })
    }
}

/// How long the search may run. Deterministic limits only count search steps; a wall-clock limit
/// is the caller's business, through `should_stop` (polled every [`Budget::POLL_INTERVAL`] steps).
pub struct Budget<'a> {
    should_stop: Option<&'a mut dyn FnMut() -> bool>,
    max_steps: Option<u64>,
    steps: u64,
    stopped: bool,
}

impl<'a> Budget<'a> {
    /// How many search steps pass between two polls of `should_stop`.
    pub const POLL_INTERVAL: u64 = 1024;

    /// No limit at all: the search runs until it decides (may take exponential time).
    pub fn unlimited() -> Self {
        Budget {
            should_stop: None,
            max_steps: None,
            steps: 0,
            stopped: false,
        }
    }

    /// Stops when `should_stop` returns true (polled every [`Budget::POLL_INTERVAL`] steps).
    pub fn with_stop(should_stop: &'a mut dyn FnMut() -> bool) -> Self {
        Budget {
            should_stop: Some(should_stop),
            ..Budget::unlimited()
        }
    }

    /// Additionally stops after `max_steps` search steps in total (over all partitions).
    pub fn max_steps(mut self, max_steps: u64) -> Self {
        self.max_steps = Some(max_steps);
        self
    }

    /// Search steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the budget ran out.
    pub fn exhausted(&self) -> bool {
        self.stopped
    }

    /// Counts one step; true if the search must stop now.
    #[inline]
    pub(crate) fn tick(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.steps += 1;
        if self.max_steps.is_some_and(|m| self.steps > m) {
            self.stopped = true;
        } else if self.steps.is_multiple_of(Self::POLL_INTERVAL) {
            if let Some(stop) = self.should_stop.as_mut() {
                self.stopped = stop();
            }
        }
        self.stopped
    }
}

/// Options for [`check_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions {
    /// Keep checking the remaining partitions after one was found not linearizable (to report
    /// every failing key). By default the check stops at the first failure.
    pub check_all_partitions: bool,
}

/// Checks `history` against `model` with no limit on the search (see [`check_with`]).
pub fn check<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> Report {
    check_with(
        model,
        history,
        &mut Budget::unlimited(),
        CheckOptions::default(),
    )
}

/// Checks `history` against `model` within `budget`.
///
/// The partitions' searches are interleaved (round robin, [`SLICE_STEPS`] steps at a time), so a
/// partition that is quickly found not linearizable is not held up by one that is hard to
/// decide. The verdict is `NotLinearizable` if some partition is not linearizable, else
/// `Unknown` if some partition could not be decided, else `Linearizable`. Summaries are listed in
/// partition order (order of each key's first operation).
pub fn check_with<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: &mut Budget<'_>,
    options: CheckOptions,
) -> Report {
    let partitions = partition(model, history);
    let steps_at_start = budget.steps();
    let mut summaries: Vec<PartitionSummary> = partitions
        .iter()
        .map(|(key, indices)| PartitionSummary {
            key: key.clone(),
            operations: indices.len(),
            verdict: Verdict::Unknown,
            steps: 0,
            linearization: Vec::new(),
        })
        .collect();
    let mut failures = Vec::new();
    let mut active: Vec<(usize, search::Search<'_, M>)> = partitions
        .iter()
        .enumerate()
        .map(|(p, (_, indices))| {
            let ops = indices.iter().map(|&i| &history[i]).collect();
            (p, search::Search::new(model, ops, true))
        })
        .collect();
    'rounds: while !active.is_empty() {
        let mut k = 0;
        while k < active.len() {
            let (p, search) = &mut active[k];
            let p = *p;
            let before = budget.steps();
            let outcome = search.run(model, budget, SLICE_STEPS);
            summaries[p].steps += budget.steps() - before;
            let Some(outcome) = outcome else {
                k += 1;
                continue;
            };
            let indices = &partitions[p].1;
            match outcome {
                search::Outcome::Linearizable(order) => {
                    summaries[p].verdict = Verdict::Linearizable;
                    summaries[p].linearization = order.iter().map(|&q| indices[q]).collect();
                }
                search::Outcome::NotLinearizable(prefix) => {
                    let explained = if search.inferred() {
                        explain(model, search.ops(), prefix)
                    } else {
                        Ok(prefix)
                    };
                    let prefix = match explained {
                        Ok(prefix) => prefix,
                        Err(order) => {
                            // Program order and real time alone admit a linearization: an
                            // inference was wrong. Never report a failure that is not one.
                            debug_assert!(false, "append inference refuted by {order:?}");
                            summaries[p].verdict = Verdict::Linearizable;
                            summaries[p].linearization =
                                order.iter().map(|&q| indices[q]).collect();
                            active.swap_remove(k);
                            continue;
                        }
                    };
                    summaries[p].verdict = Verdict::NotLinearizable;
                    failures.push(report::failure_report(
                        model,
                        partitions[p].0.clone(),
                        indices,
                        search.ops(),
                        &prefix,
                        summaries[p].steps,
                    ));
                    if !options.check_all_partitions {
                        break 'rounds;
                    }
                }
                search::Outcome::Unknown => break 'rounds,
            }
            active.swap_remove(k);
        }
    }
    let verdict = if !failures.is_empty() {
        Verdict::NotLinearizable
    } else if summaries.iter().any(|s| s.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    };
    Report {
        verdict,
        operations: history.len(),
        partitions: partitions.len(),
        steps: budget.steps() - steps_at_start,
        summaries,
        failures,
    }
}

/// How many search steps [`explain`] may take (not counted in the caller's budget).
pub const EXPLAIN_STEPS: u64 = 20_000;

/// The longest linearizable prefix for the report of a partition found not linearizable with
/// the help of inferred constraints (`found` is the prefix that search ended with): a search
/// with real time and program order only, which is what a reader of the report can check,
/// within [`EXPLAIN_STEPS`]. `Err(linearization)` if that search finds the partition
/// linearizable after all (an inference was wrong).
fn explain<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    found: Vec<usize>,
) -> Result<Vec<usize>, Vec<usize>> {
    let mut search = search::Search::new(model, ops.to_vec(), false);
    let mut budget = Budget::unlimited().max_steps(EXPLAIN_STEPS);
    let prefix = match search.run(model, &mut budget, EXPLAIN_STEPS + 1) {
        Some(search::Outcome::Linearizable(order)) => return Err(order),
        Some(search::Outcome::NotLinearizable(prefix)) => prefix,
        _ => search.best().to_vec(),
    };
    Ok(if prefix.len() >= found.len() {
        prefix
    } else {
        found
    })
}

/// How many search steps one partition gets before the next one's turn.
pub const SLICE_STEPS: u64 = 4096;

/// Groups operation indices by partition key, in order of first appearance.
fn partition<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
) -> Vec<(Option<String>, Vec<usize>)> {
    let mut groups: IndexMap<String, Vec<usize>> = IndexMap::new();
    for (i, op) in history.iter().enumerate() {
        match model.partition_key(&op.input) {
            Some(key) => groups.entry(key).or_default().push(i),
            None => return vec![(None, (0..history.len()).collect())],
        }
    }
    groups.into_iter().map(|(k, v)| (Some(k), v)).collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_inference;

#[cfg(test)]
mod tests_infer_reference;
