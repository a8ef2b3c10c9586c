//! What a check found, as data (for tools) and as text (`Display`).

use super::{Model, Operation, Verdict};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The result of [`super::check_with`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    /// Operations in the whole history.
    pub operations: usize,
    /// Number of independent partitions the history was split into.
    pub partitions: usize,
    /// Search steps over all partitions.
    pub steps: u64,
    /// One summary per partition, in checking order.
    pub summaries: Vec<PartitionSummary>,
    /// Details of each partition found not linearizable (at most one unless
    /// `CheckOptions::check_all_partitions`).
    pub failures: Vec<PartitionReport>,
}

/// The outcome for one partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartitionSummary {
    /// The partition key (`None`: the whole history was one partition).
    pub key: Option<String>,
    pub operations: usize,
    pub verdict: Verdict,
    pub steps: u64,
    /// For a linearizable partition, a linearization as indices into the whole history (pending
    /// operations that are left out did not take effect). Empty otherwise.
    pub linearization: Vec<usize>,
}

/// One operation, as shown in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpSummary {
    /// Index of the operation in the whole history.
    pub index: usize,
    pub client: u64,
    pub call: u64,
    pub ret: Option<u64>,
    /// `Model::describe` of the operation.
    pub description: String,
}

/// An operation that could not extend the longest linearizable prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckOp {
    /// Position in [`PartitionReport::ops`].
    pub op: usize,
    /// True if the model rejects the operation right after the prefix; false if it accepts it
    /// but no linearization of the remaining operations follows.
    pub rejected: bool,
}

/// Why a partition is not linearizable. Its operations are a non-linearizable slice of the
/// history on their own.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartitionReport {
    pub key: Option<String>,
    /// The partition's operations, in history order.
    pub ops: Vec<OpSummary>,
    /// The longest linearizable prefix found, as positions in `ops`, in linearization order.
    pub longest_prefix: Vec<usize>,
    /// `Debug` of the model state after the prefix.
    pub state_after_prefix: String,
    /// The operations that could have come next in real-time order, none of which works.
    pub stuck: Vec<StuckOp>,
    pub steps: u64,
}

pub(crate) fn failure_report<M: Model>(
    model: &M,
    key: Option<String>,
    indices: &[usize],
    ops: &[&Operation<M::Input, M::Output>],
    prefix: &[usize],
    steps: u64,
) -> PartitionReport {
    let summaries = ops
        .iter()
        .zip(indices)
        .map(|(op, &index)| OpSummary {
            index,
            client: op.client,
            call: op.call,
            ret: op.ret,
            description: model.describe(&op.input, &op.output),
        })
        .collect();
    let mut state = model.init();
    let mut done = vec![false; ops.len()];
    for &p in prefix {
        done[p] = true;
        // The prefix was accepted by the search, so this never fails; stay total anyway.
        if let Some(next) = model.step(&state, &ops[p].input, &ops[p].output) {
            state = next;
        }
    }
    let first_return = ops
        .iter()
        .enumerate()
        .filter(|(p, _)| !done[*p])
        .filter_map(|(_, op)| op.ret.map(|r| r.max(op.call)))
        .min()
        .unwrap_or(u64::MAX);
    let stuck = ops
        .iter()
        .enumerate()
        .filter(|(p, op)| !done[*p] && op.call <= first_return)
        .map(|(p, op)| StuckOp {
            op: p,
            rejected: model.step(&state, &op.input, &op.output).is_none(),
        })
        .collect();
    PartitionReport {
        key,
        ops: summaries,
        longest_prefix: prefix.to_vec(),
        state_after_prefix: format!("{state:?}"),
        stuck,
        steps,
    }
}

/// How many prefix operations `Display` shows (the last ones).
const SHOWN_PREFIX: usize = 20;

struct ShowOp<'a>(&'a OpSummary);

impl fmt::Display for ShowOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0;
        let ret = match op.ret {
            Some(r) => r.to_string(),
            None => "never".to_string(),
        };
        write!(
            f,
            "#{} client {} [{} .. {}] {}",
            op.index, op.client, op.call, ret, op.description
        )
    }
}

fn show_key(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("partition {k:?}"),
        None => "history".to_string(),
    }
}

impl fmt::Display for PartitionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} is not linearizable ({} operations)",
            show_key(&self.key),
            self.ops.len()
        )?;
        writeln!(
            f,
            "  longest linearizable prefix: {} of {} operations",
            self.longest_prefix.len(),
            self.ops.len()
        )?;
        let skip = self.longest_prefix.len().saturating_sub(SHOWN_PREFIX);
        if skip > 0 {
            writeln!(f, "    ... ({skip} earlier operations)")?;
        }
        for (n, &p) in self.longest_prefix.iter().enumerate().skip(skip) {
            writeln!(f, "    {:>4}. {}", n + 1, ShowOp(&self.ops[p]))?;
        }
        writeln!(f, "  state after the prefix: {}", self.state_after_prefix)?;
        writeln!(f, "  none of these can be linearized next:")?;
        for s in &self.stuck {
            let why = if s.rejected {
                "rejected by the model"
            } else {
                "accepted, but the rest cannot follow"
            };
            writeln!(f, "    {}  <- {why}", ShowOp(&self.ops[s.op]))?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} operations in {} partitions, {} search steps",
            self.verdict, self.operations, self.partitions, self.steps
        )?;
        let undecided: Vec<String> = self
            .summaries
            .iter()
            .filter(|s| s.verdict == Verdict::Unknown)
            .map(|s| show_key(&s.key))
            .collect();
        if !undecided.is_empty() {
            if self.verdict == Verdict::Unknown {
                writeln!(f, "undecided (budget exhausted): {}", undecided.join(", "))?;
            } else {
                writeln!(
                    f,
                    "({} other partitions not decided after the first failure)",
                    undecided.len()
                )?;
            }
        }
        for failure in &self.failures {
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}
