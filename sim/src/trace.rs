//! The JSON Lines trace format: a header, one record per event, and a result.
//!
//! Payloads (messages, inputs, observations, durable writes) are the nodes' own serde types
//! held as JSON values, so the trace reads with named fields, and the engine stays generic.
//!
//! Format 2 (this build writes it; it reads 1 and 2) keeps traces small and streamable:
//! - a large part of a payload (a long string, a byte string, a large array or object) is
//!   written once, in a `blob` line before the first record that uses it, and replaced by
//!   `{"$ref":ID}` wherever it occurs ([`compact`], [`cache`]); a string or byte string like
//!   an earlier one is written as a delta against it ([`delta`]);
//! - a `forget` line drops blobs the writer will not refer to again unless it writes them
//!   anew, so a reader holds at most [`cache::BUDGET`] bytes of them;
//! - a delivery names its message by id (`{"kind":"deliver","from":1,"id":7}`): the message is
//!   in the `send` output that carried it.
//!
//! [`TraceReader`] reads either format one record at a time and resolves all of this;
//! [`TraceSink`] writes format 2, compressed with zstd for a `.zst` file ([`files`]).

pub mod base64;
pub mod cache;
pub mod compact;
mod decode;
pub mod delta;
pub mod files;
mod read;
pub mod same_text;
pub mod table;
mod write;

pub use decode::decode as table_decode;
pub use read::{is_ref, RawRecord, RawSend, RawStep, TraceReader};
pub use table::{Blob, BlobTable};
pub use write::{output_text, SinkStats, TraceSink};

use crate::checker::{Undecided, Violation};
use crate::faults::Fault;
use crate::network::{DropCause, NetworkConfig};
use crate::node::{NodeId, Time, TimerId};
use crate::panics::Panic;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the trace format this build writes; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build reads.
pub const OLDEST_FORMAT: u32 = 1;

/// One node of the run as the trace (and the viewer) names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// Clients (clerks, workload drivers) are drawn as their own lanes and never crash at random.
    pub client: bool,
    /// The node's clock at the start (left out when perfect, so traces without clocks settings
    /// keep the header they always had).
    #[serde(default, skip_serializing_if = "crate::clock::ClockSpec::is_perfect")]
    pub clock: crate::clock::ClockSpec,
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
    /// A message arrives; `id` matches the sender's `send` output. Format 2 writes no `msg`
    /// (the send has it); [`TraceReader`] fills it in.
    Deliver {
        from: NodeId,
        id: u64,
        #[serde(default)]
        msg: Value,
    },
    /// A timer fires.
    Timer { id: TimerId, tag: u64 },
    /// The harness calls the node.
    Input { input: Value },
}

/// A trace read back whole: its records (payloads expanded) with their line numbers. For small
/// traces (tests, hand-written ones); large ones are read with [`TraceReader`].
pub struct Trace {
    pub records: Vec<(usize, Record)>,
    /// The format the text was in.
    pub format: u32,
}

impl Trace {
    /// Parses a JSON Lines trace; the error names the line and the problem.
    pub fn parse(text: &str) -> Result<Trace, String> {
        Trace::read(text.as_bytes())
    }

    /// Reads a whole trace from a stream.
    pub fn read(input: impl std::io::BufRead) -> Result<Trace, String> {
        let mut reader = TraceReader::new(input)?;
        let mut records = Vec::new();
        while let Some(r) = reader.next_record() {
            let (line, rec) = r?;
            records.push((line, reader.resolve_record(rec)));
        }
        Ok(Trace {
            records,
            format: reader.format(),
        })
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
