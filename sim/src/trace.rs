//! The JSON Lines trace format: a header, one record per event, and a result.
//!
//! Payloads (messages, inputs, observations, durable writes) are the nodes' own serde types
//! held as JSON values, so the trace reads with named fields, and the engine stays generic.

use crate::checker::{Undecided, Violation};
use crate::faults::Fault;
use crate::network::{DropCause, NetworkConfig};
use crate::node::{NodeId, Time, TimerId};
use crate::panics::Panic;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{self, Write};

/// Version of the trace format; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// One node of the run as the trace (and the viewer) names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// Clients (clerks, workload drivers) are drawn as their own lanes and never crash at random.
    pub client: bool,
}

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// First line: how to rebuild the run.
    Header {
        format: u32,
        seed: u64,
        /// The scenario as given (file contents), so the trace is self-contained.
        scenario: Value,
        /// Where the scenario came from, for messages.
        source: String,
        nodes: Vec<NodeSpec>,
        network: NetworkConfig,
        /// Settings the seed drew (swarm testing), recorded for people and the viewer.
        #[serde(default)]
        drawn: Value,
    },
    /// One node step: an input and everything it produced.
    Step {
        n: u64,
        t: Time,
        node: NodeId,
        /// Incarnation of the node (bumped by each crash).
        inc: u32,
        input: StepInput,
        out: Vec<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply: Option<Value>,
        /// The node panicked during this step: its outputs were discarded (`out` is empty) and
        /// the run stopped with a "panic" violation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        panic: Option<Panic>,
    },
    /// A message lost at delivery time (destination down, or link cut while in flight).
    Drop {
        n: u64,
        t: Time,
        from: NodeId,
        to: NodeId,
        id: u64,
        cause: DropCause,
        kind: String,
    },
    /// A fault applied by the schedule, the fault profile or the harness.
    Fault {
        n: u64,
        t: Time,
        fault: Fault,
        /// True if it changed nothing (restart of a running node, crash of a dead one).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        noop: bool,
        /// True if a reactive fault (`reactive.rs`) struck because of what a node just did,
        /// rather than the schedule.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reactive: bool,
    },
    /// A remark of the harness (what the test driver did or checked).
    Note { n: u64, t: Time, text: String },
    /// A branch point: from here on every random stream is drawn from `seed` (see
    /// `SimConfig::branches`); a replay reseeds the nodes here too.
    Branch { n: u64, t: Time, seed: u64 },
    /// Last line.
    Result {
        verdict: Verdict,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        violation: Option<Violation>,
        /// Checks that could not decide (verdict `unknown`, unless a violation came first).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unknown: Vec<Undecided>,
        /// Failures of checks that let the run go on, when another failure is the violation.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<Violation>,
        end_time: Time,
        stats: Stats,
    },
}

/// The outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check held.
    Ok,
    /// A check failed (a violation wins over any undecided check).
    Violation,
    /// No check failed, but at least one could not decide: not a pass.
    Unknown,
}

impl Verdict {
    /// The verdict of a run from what it found.
    pub fn of(violation: Option<&Violation>, unknown: &[Undecided]) -> Verdict {
        match (violation, unknown.is_empty()) {
            (Some(_), _) => Verdict::Violation,
            (None, false) => Verdict::Unknown,
            (None, true) => Verdict::Ok,
        }
    }
    /// `ok`, `violation` or `unknown`, as in traces and fuzz reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Violation => "violation",
            Verdict::Unknown => "unknown",
        }
    }
    /// The exit code of `sim`: 0 ok, 1 violation, 3 unknown.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Violation => 1,
            Verdict::Unknown => 3,
        }
    }
}

/// The input of a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepInput {
    /// A new incarnation starts (from durable state, if any).
    Start,
    /// A message arrives; `id` matches the sender's `send` output.
    Deliver { from: NodeId, id: u64, msg: Value },
    /// A timer fires.
    Timer { id: TimerId, tag: u64 },
    /// The harness calls the node.
    Input { input: Value },
}

/// Writes records as JSON Lines; remembers the first I/O error instead of failing the run.
pub struct TraceSink {
    out: Box<dyn Write>,
    error: Option<io::Error>,
}

impl TraceSink {
    /// A sink writing to `out` (buffer it: one write per record).
    pub fn new(out: Box<dyn Write>) -> Self {
        TraceSink { out, error: None }
    }
    /// Append one record.
    pub fn write(&mut self, record: &Record) {
        if self.error.is_some() {
            return;
        }
        let res = serde_json::to_writer(&mut self.out, record)
            .map_err(io::Error::from)
            .and_then(|_| self.out.write_all(b"\n"));
        if let Err(e) = res {
            self.error = Some(e);
        }
    }
    /// Flush and report the first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

/// A trace read back: records with their line numbers.
pub struct Trace {
    pub records: Vec<(usize, Record)>,
}

impl Trace {
    /// Parses a JSON Lines trace; the error names the line and the problem.
    pub fn parse(text: &str) -> Result<Trace, String> {
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let rec: Record =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            records.push((i + 1, rec));
        }
        match records.first() {
            Some((_, Record::Header { format, .. })) if *format == FORMAT_VERSION => {}
            Some((_, Record::Header { format, .. })) => {
                return Err(format!(
                    "line 1: trace format {format} is not supported (this build reads {FORMAT_VERSION})"
                ))
            }
            _ => return Err("line 1: a trace must start with a header record".into()),
        }
        Ok(Trace { records })
    }

    /// The header fields: seed, scenario, source, nodes.
    pub fn header(&self) -> (u64, &Value, &str, &[NodeSpec]) {
        match &self.records[0].1 {
            Record::Header {
                seed,
                scenario,
                source,
                nodes,
                ..
            } => (*seed, scenario, source, nodes),
            _ => unreachable!("checked by parse"),
        }
    }

    /// The result record, if the run finished writing it.
    pub fn result(&self) -> Option<(&Verdict, Option<&Violation>)> {
        self.records.iter().rev().find_map(|(_, r)| match r {
            Record::Result {
                verdict, violation, ..
            } => Some((verdict, violation.as_ref())),
            _ => None,
        })
    }

    /// The checks the result record lists as undecided (empty without a result record).
    pub fn undecided(&self) -> &[Undecided] {
        self.records
            .iter()
            .rev()
            .find_map(|(_, r)| match r {
                Record::Result { unknown, .. } => Some(unknown.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// Line number of the last record.
    pub fn last_line(&self) -> usize {
        self.records.last().map_or(0, |(line, _)| *line)
    }
}
