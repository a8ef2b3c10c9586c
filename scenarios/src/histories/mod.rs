//! Concurrent histories on disk: parsers for the supported formats, format detection, and the
//! glue between them and the linearizability checker in `sim::linearizability`.
//!
//! Formats:
//! - `sim`: the simulator's own JSON Lines key/value histories ([`sim_format`]);
//! - `etcd`: Jepsen logs of a single register with read/write/cas ([`etcd`]);
//! - `porcupine-kv`: key/value histories as Clojure maps, one event per line ([`porcupine_kv`]).

pub mod cmd;
pub mod etcd;
pub mod generate;
pub mod porcupine_kv;
pub mod sim_format;
pub mod trace_format;

use kv::model::{KvModel, KvOperation};
use sim::linearizability::{check_with, Budget, CheckOptions, Model, Operation, Report};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

pub use etcd::{RegisterInput, RegisterModel, RegisterOperation, RegisterOutput};
pub use sim_format::{parse_sim_history, write_sim_history};

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// The simulator's JSON Lines key/value format.
    Sim,
    /// Jepsen etcd logs: one register with read, write and cas.
    Etcd,
    /// Key/value histories as Clojure maps (porcupine's test data).
    PorcupineKv,
    /// A simulator trace of a KV scenario (`sim run --trace`): the clients' operations.
    Trace,
}

impl HistoryFormat {
    pub fn name(self) -> &'static str {
        match self {
            HistoryFormat::Sim => "sim",
            HistoryFormat::Etcd => "etcd",
            HistoryFormat::PorcupineKv => "porcupine-kv",
            HistoryFormat::Trace => "trace",
        }
    }
}

impl fmt::Display for HistoryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A problem with one line of a history (`line` is 1-based; 0 means the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.line, self.message)
        }
    }
}

/// A problem loading a history file: `<path>:<line>: <problem>` (or `<path>: <problem>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub path: String,
    pub error: ParseError,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.path)?;
        if self.error.line != 0 {
            write!(f, "{}:", self.error.line)?;
        }
        write!(f, " {}", self.error.message)
    }
}

impl std::error::Error for LoadError {}

/// A parsed history, of whichever model its format implies.
#[derive(Clone, Debug)]
pub enum History {
    Kv(Vec<KvOperation>),
    Register(Vec<RegisterOperation>),
}

impl History {
    pub fn len(&self) -> usize {
        match self {
            History::Kv(ops) => ops.len(),
            History::Register(ops) => ops.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Guesses the format from the file name and contents: a line starting with `{"` means sim, one
/// starting with `{:process` means porcupine-kv, `jepsen.util` lines mean etcd.
pub fn detect_format(path: &Path, text: &str) -> Option<HistoryFormat> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(l) if l.starts_with("{\"type\":\"header\"") => return Some(HistoryFormat::Trace),
        Some(l) if l.starts_with("{\"") => return Some(HistoryFormat::Sim),
        Some(l) if l.starts_with("{:process") => return Some(HistoryFormat::PorcupineKv),
        _ => {}
    }
    let is_log = path.extension().is_some_and(|e| e == "log");
    let has_jepsen = text.lines().any(|l| l.contains("jepsen.util"));
    if has_jepsen && (is_log || first.is_some_and(|l| l.contains("jepsen.util"))) {
        return Some(HistoryFormat::Etcd);
    }
    None
}

/// Parses `text` in the given format.
pub fn parse(format: HistoryFormat, text: &str) -> Result<History, ParseError> {
    Ok(match format {
        HistoryFormat::Sim => History::Kv(sim_format::parse_sim_history(text)?),
        HistoryFormat::Etcd => History::Register(etcd::parse_etcd(text)?),
        HistoryFormat::PorcupineKv => History::Kv(porcupine_kv::parse_porcupine_kv(text)?),
        HistoryFormat::Trace => History::Kv(trace_format::parse_trace_history(text)?),
    })
}

/// Reads and parses a history file, detecting its format unless `format` is given.
pub fn load(
    path: &Path,
    format: Option<HistoryFormat>,
) -> Result<(HistoryFormat, History), LoadError> {
    let fail = |error: ParseError| LoadError {
        path: path.display().to_string(),
        error,
    };
    // A simulator trace (plain or zstd) is read as a stream: it may be gigabytes.
    if format.is_none_or(|f| f == HistoryFormat::Trace) {
        use std::io::BufRead;
        let mut input =
            sim::trace::files::open(path).map_err(|e| fail(ParseError::new(0, e.to_string())))?;
        let head = input
            .fill_buf()
            .map_err(|e| fail(ParseError::new(0, e.to_string())))?;
        let start = head.iter().position(|b| !b.is_ascii_whitespace());
        let is_trace = format == Some(HistoryFormat::Trace)
            || start.is_some_and(|i| head[i..].starts_with(b"{\"type\":\"header\""));
        if is_trace {
            let ops = trace_format::history_from(input).map_err(fail)?;
            return Ok((HistoryFormat::Trace, History::Kv(ops)));
        }
    }
    let bytes = std::fs::read(path).map_err(|e| fail(ParseError::new(0, e.to_string())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        fail(ParseError::new(line, "not valid UTF-8"))
    })?;
    let format = match format.or_else(|| detect_format(path, &text)) {
        Some(f) => f,
        None => {
            return Err(fail(ParseError::new(
                0,
                "cannot detect the history format (expected jepsen.util log lines, \
                 `{:process ...}` maps or JSON lines); use --format sim|etcd|porcupine-kv",
            )))
        }
    };
    let history = parse(format, &text).map_err(fail)?;
    Ok((format, history))
}

/// A `should_stop` closure for [`Budget::with_stop`] that says stop once `limit` has passed.
pub fn deadline(limit: Duration) -> impl FnMut() -> bool {
    let start = Instant::now();
    move || start.elapsed() >= limit
}

/// Checks a parsed history with a wall-clock limit.
pub fn check_history(history: &History, time_limit: Duration) -> Report {
    match history {
        History::Kv(ops) => check_timed(&KvModel, ops, time_limit),
        History::Register(ops) => check_timed(&RegisterModel, ops, time_limit),
    }
}

/// Checks a key/value history (e.g. one recorded by the simulation) with a wall-clock limit.
pub fn check_kv(ops: &[KvOperation], time_limit: Duration) -> Report {
    check_timed(&KvModel, ops, time_limit)
}

fn check_timed<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    time_limit: Duration,
) -> Report {
    let mut stop = deadline(time_limit);
    let mut budget = Budget::with_stop(&mut stop);
    check_with(model, ops, &mut budget, CheckOptions::default())
}

/// How an operation ended, for [`OpBuilder::complete`].
pub(crate) enum Completion<O> {
    /// It returned this output.
    Returned(O),
    /// It definitely had no effect (a failed operation): drop it from the history.
    NoEffect,
    /// Its outcome is unknown: it stays open to the end of the history.
    Unknown,
}

/// An operation being built (output `None` until it returns) and its function name; `None` once
/// dropped.
type Slot<I, O> = Option<(Operation<I, Option<O>>, &'static str)>;

/// Pairs invocation and completion events per process into operations. Event times are the
/// events' positions in the file.
pub(crate) struct OpBuilder<I, O> {
    /// Operations in invocation order; `None` once dropped.
    ops: Vec<Slot<I, O>>,
    /// Per process, the open operation's index and the line of its invocation.
    open: BTreeMap<u64, (usize, usize)>,
    time: u64,
}

impl<I, O> OpBuilder<I, O> {
    pub(crate) fn new() -> Self {
        OpBuilder {
            ops: Vec::new(),
            open: BTreeMap::new(),
            time: 0,
        }
    }

    pub(crate) fn invoke(
        &mut self,
        line: usize,
        process: u64,
        f: &'static str,
        input: I,
    ) -> Result<(), ParseError> {
        if let Some(&(i, at)) = self.open.get(&process) {
            let open_f = self.ops[i].as_ref().map_or("?", |o| o.1);
            return Err(ParseError::new(
                line,
                format!("process {process} invokes :{f} while its :{open_f} from line {at} is still open"),
            ));
        }
        self.time += 1;
        self.open.insert(process, (self.ops.len(), line));
        self.ops.push(Some((
            Operation {
                client: process,
                input,
                output: None,
                call: self.time,
                ret: None,
            },
            f,
        )));
        Ok(())
    }

    pub(crate) fn complete(
        &mut self,
        line: usize,
        process: u64,
        f: &str,
        completion: Completion<O>,
    ) -> Result<(), ParseError> {
        let Some((i, at)) = self.open.remove(&process) else {
            return Err(ParseError::new(
                line,
                format!("process {process} completes :{f} but has no open operation"),
            ));
        };
        let slot = &mut self.ops[i];
        let open_f = slot.as_ref().map_or("?", |o| o.1);
        if open_f != f {
            return Err(ParseError::new(
                line,
                format!("process {process} completes :{f} but its open operation (line {at}) is :{open_f}"),
            ));
        }
        self.time += 1;
        match completion {
            Completion::Returned(output) => {
                if let Some((op, _)) = slot.as_mut() {
                    op.output = Some(output);
                    op.ret = Some(self.time);
                }
            }
            Completion::NoEffect => *slot = None,
            Completion::Unknown => {}
        }
        Ok(())
    }

    /// The operations; those never completed get the `unknown` output and no return time.
    pub(crate) fn finish(self, unknown: O) -> Vec<Operation<I, O>>
    where
        O: Clone,
    {
        self.ops
            .into_iter()
            .flatten()
            .map(|(op, _)| Operation {
                client: op.client,
                input: op.input,
                output: op.output.unwrap_or_else(|| unknown.clone()),
                call: op.call,
                ret: op.ret,
            })
            .collect()
    }
}
