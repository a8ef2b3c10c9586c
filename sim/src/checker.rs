//! Pluggable invariant checkers. They see every observation and fault and can stop the run.

use crate::faults::Fault;
use crate::node::{Node, NodeId, Time};
use crate::panics::Panic;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a checker (or the harness) reports when a property does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The property, e.g. "election safety".
    pub property: String,
    /// The nodes involved.
    pub nodes: Vec<NodeId>,
    /// What exactly went wrong (terms, indices, values).
    pub detail: String,
}

impl Failure {
    /// A failure of `property` involving `nodes`.
    pub fn new(property: impl Into<String>, nodes: Vec<NodeId>, detail: impl Into<String>) -> Self {
        Failure {
            property: property.into(),
            nodes,
            detail: detail.into(),
        }
    }
}

/// A failure pinned to where the run was when it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    #[serde(flatten)]
    pub failure: Failure,
    /// Virtual time in µs.
    pub time: Time,
    /// The number of the event (trace record) during which it was found.
    pub event: u64,
    /// For property "panic": the panic's message and place, compared by replay and shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic: Option<Panic>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.panic.is_some() {
            ""
        } else {
            " violated"
        };
        write!(
            f,
            "{}{verb} at {} (event {}), nodes {:?}: {}",
            self.failure.property,
            crate::fmt_time(self.time),
            self.event,
            self.failure.nodes,
            self.failure.detail
        )
    }
}

/// A check that ran but could not decide (a search that ran out of budget): the run is
/// neither a pass nor a failure, and its verdict is "unknown".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undecided {
    /// The check, e.g. "linearizability".
    pub check: String,
    /// What was left undecided and why (budget spent, keys, operations).
    pub detail: String,
    /// Virtual time in µs.
    pub time: Time,
    /// The number of the event during which the check gave up.
    pub event: u64,
}

impl fmt::Display for Undecided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} undecided at {} (event {}): {}",
            self.check,
            crate::fmt_time(self.time),
            self.event,
            self.detail
        )
    }
}

/// What happened to a node's disk besides its own writes ([`Checker::on_disk`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskChange {
    /// The node crashed: its durable state is what it will restart from.
    Crash,
    /// A block was damaged at rest.
    Corrupt,
    /// The disk was replaced by an empty one.
    Lost,
}

/// An invariant checker. It must be deterministic: it sees the run in event order.
pub trait Checker<N: Node> {
    /// Short name for summaries.
    fn name(&self) -> &'static str;
    /// A node reported something.
    fn on_observation(&mut self, now: Time, node: NodeId, obs: &N::Obs) -> Result<(), Failure>;
    /// A node's durable state changed (after the step, or the harness call, that wrote it).
    fn on_persist(
        &mut self,
        _now: Time,
        _node: NodeId,
        _durable: &N::Durable,
    ) -> Result<(), Failure> {
        Ok(())
    }
    /// Something other than a write of the node changed its durable state, or may have: a
    /// crash (on a realistic disk it keeps only a prefix of the unsynced writes; every crash
    /// is reported, with either disk), a corrupt block, a lost disk. `durable` is the state
    /// after it. Reported whoever caused it (the fault schedule or the harness).
    fn on_disk(
        &mut self,
        _now: Time,
        _node: NodeId,
        _change: DiskChange,
        _durable: &N::Durable,
    ) -> Result<(), Failure> {
        Ok(())
    }
    /// A fault was applied (crash, restart, partition...).
    fn on_fault(&mut self, _now: Time, _fault: &Fault) -> Result<(), Failure> {
        Ok(())
    }
    /// The run ended without an earlier violation.
    fn finish(&mut self, _now: Time) -> Result<(), Failure> {
        Ok(())
    }
    /// What the engine calls at the end: [`Checker::finish`], except that a checker that could
    /// not decide returns `Ok(Some(what was undecided))`, which makes the verdict "unknown".
    fn conclude(&mut self, now: Time) -> Result<Option<String>, Failure> {
        self.finish(now).map(|()| None)
    }
}
