//! KV histories read from a simulator trace (`sim run --trace` of a KV scenario): each client's
//! `invoke` and `complete` observations become operations, timed by the trace's virtual clock.
//! Operations that never completed are open to the end (their effect is unknown). A client
//! invokes its next operation in the instant its previous one completed; the checker keeps the
//! two in program order.

use super::ParseError;
use crate::run::run_traced;
use crate::scenario::Scenario;
use kv::model::{KvOperation, KvOutput};
use kv::Op;
use sim::trace::{Record, TraceReader, TraceSink};
use std::collections::BTreeMap;
use std::io::BufRead;

/// Runs a KV scenario with `seed` and returns its clients' history. The trace streams through
/// a pipe to a thread that keeps only the operations (snapshot-heavy runs write a lot).
pub fn run_kv_history(sc: &Scenario, seed: u64, source: &str) -> Result<Vec<KvOperation>, String> {
    let (reader, writer) = std::io::pipe().map_err(|e| format!("a pipe: {e}"))?;
    let history = std::thread::scope(|s| {
        let reading = s.spawn(move || history_from(std::io::BufReader::new(reader)));
        // The run owns the writer and drops it when it ends: the reader then sees the end.
        let sink = TraceSink::new(Box::new(std::io::BufWriter::new(writer)));
        let run = run_traced(sc, seed, source, Some(sink));
        let history = reading.join().expect("reading the history does not panic");
        run.map(|_| history)
    })?;
    history.map_err(|e| format!("{source} seed {seed}: {e}"))
}

/// Extracts the client operations of a KV trace.
pub fn parse_trace_history(text: &str) -> Result<Vec<KvOperation>, ParseError> {
    history_from(text.as_bytes())
}

/// A reader's error `line N: problem` as a [`ParseError`].
fn read_error(e: String) -> ParseError {
    let parsed = e.strip_prefix("line ").and_then(|rest| {
        let (n, msg) = rest.split_once(": ")?;
        Some((n.parse().ok()?, msg.to_string()))
    });
    match parsed {
        Some((line, msg)) => ParseError::new(line, format!("not a trace record: {msg}")),
        None => ParseError::new(0, e),
    }
}

/// Extracts the client operations of a KV trace read as a stream (plain JSON Lines; see
/// `sim::trace::files` for compressed ones).
pub fn history_from(input: impl BufRead) -> Result<Vec<KvOperation>, ParseError> {
    let mut reader = TraceReader::new(input).map_err(|e| {
        if e.contains("must start with a header") {
            ParseError::new(1, "a trace starts with a header record")
        } else {
            read_error(e)
        }
    })?;
    let mut ops: Vec<KvOperation> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    while let Some(next) = reader.next_record() {
        let (line, rec) = next.map_err(read_error)?;
        let Record::Step { t, out, .. } = rec else {
            continue;
        };
        for out in &out {
            let Some(obs) = out.get("obs") else { continue };
            // Only the two observations a history needs are resolved.
            let is_op = obs.get("invoke").is_some() || obs.get("complete").is_some();
            if !is_op {
                continue;
            }
            let obs = reader.resolve(obs);
            if let Some(inv) = obs.get("invoke") {
                let client = inv["client"]
                    .as_u64()
                    .ok_or_else(|| ParseError::new(line, "invoke without a client"))?;
                let op: Op = serde_json::from_value(inv["op"].clone())
                    .map_err(|e| ParseError::new(line, format!("invoke with a bad op: {e}")))?;
                open.insert(client, ops.len());
                ops.push(KvOperation {
                    client,
                    input: op.to_model_input(),
                    output: KvOutput::Unknown,
                    call: t,
                    ret: None,
                });
            } else if let Some(done) = obs.get("complete") {
                let client = done["client"]
                    .as_u64()
                    .ok_or_else(|| ParseError::new(line, "complete without a client"))?;
                let Some(k) = open.remove(&client) else {
                    return Err(ParseError::new(
                        line,
                        format!("client {client} completes an operation it never invoked"),
                    ));
                };
                ops[k].ret = Some(t);
                ops[k].output = match done["result"].as_str() {
                    Some(v) => KvOutput::Value(v.to_string()),
                    None => KvOutput::Done,
                };
            }
        }
    }
    Ok(ops)
}
