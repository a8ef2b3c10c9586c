//! KV histories read from a simulator trace (`sim run --trace` of a KV scenario): each client's
//! `invoke` and `complete` observations become operations, timed by the trace's virtual clock.
//! Operations that never completed are open to the end (their effect is unknown). A client
//! invokes its next operation in the instant its previous one completed; the checker keeps the
//! two in program order.

use super::ParseError;
use crate::run::run_scenario;
use crate::scenario::Scenario;
use kv::model::{KvOperation, KvOutput};
use kv::Op;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;

/// Runs a KV scenario with `seed` and returns its clients' history, keeping in memory only the
/// trace lines the history needs (snapshot-heavy traces run to gigabytes).
pub fn run_kv_history(sc: &Scenario, seed: u64, source: &str) -> Result<Vec<KvOperation>, String> {
    let kept = Rc::new(RefCell::new(String::new()));
    let sink = OpLines {
        kept: kept.clone(),
        line: Vec::new(),
        first: true,
    };
    run_scenario(sc, seed, source, Some(Box::new(sink)))?;
    let text = kept.borrow();
    parse_trace_history(&text).map_err(|e| format!("{source} seed {seed}: {e}"))
}

/// A trace sink that keeps the header and the lines with invokes or completions.
struct OpLines {
    kept: Rc<RefCell<String>>,
    line: Vec<u8>,
    first: bool,
}

impl Write for OpLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let text = String::from_utf8_lossy(&self.line);
            if self.first || holds_an_operation(&text) {
                let mut kept = self.kept.borrow_mut();
                kept.push_str(&text);
                kept.push('\n');
            }
            self.first = false;
            self.line.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether a trace line may hold a client's invoke or completion.
fn holds_an_operation(line: &str) -> bool {
    line.contains("\"invoke\"") || line.contains("\"complete\"")
}

/// Extracts the client operations of a KV trace.
pub fn parse_trace_history(text: &str) -> Result<Vec<KvOperation>, ParseError> {
    let mut ops: Vec<KvOperation> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        // Snapshot-heavy traces run to gigabytes: parse only lines that can hold an operation.
        if i > 0 && !holds_an_operation(line) {
            continue;
        }
        let rec: Value = serde_json::from_str(line)
            .map_err(|e| ParseError::new(i + 1, format!("not a trace record: {e}")))?;
        if i == 0 && rec["type"] != "header" {
            return Err(ParseError::new(1, "a trace starts with a header record"));
        }
        if rec["type"] != "step" {
            continue;
        }
        let t = rec["t"]
            .as_u64()
            .ok_or_else(|| ParseError::new(i + 1, "a step needs a time `t`"))?;
        for out in rec["out"].as_array().into_iter().flatten() {
            let Some(obs) = out.get("obs") else { continue };
            if let Some(inv) = obs.get("invoke") {
                let client = inv["client"]
                    .as_u64()
                    .ok_or_else(|| ParseError::new(i + 1, "invoke without a client"))?;
                let op: Op = serde_json::from_value(inv["op"].clone())
                    .map_err(|e| ParseError::new(i + 1, format!("invoke with a bad op: {e}")))?;
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
                    .ok_or_else(|| ParseError::new(i + 1, "complete without a client"))?;
                let Some(k) = open.remove(&client) else {
                    return Err(ParseError::new(
                        i + 1,
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
