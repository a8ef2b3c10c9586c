//! KV histories read from a simulator trace (`sim run --trace` of a KV scenario): each client's
//! `invoke` and `complete` observations become operations, timed by the trace's virtual clock.
//! Operations that never completed are open to the end (their effect is unknown). A client
//! invokes its next operation in the instant its previous one completed; the checker keeps the
//! two in program order.

use super::ParseError;
use kv::model::{KvOperation, KvOutput};
use kv::Op;
use serde_json::Value;
use std::collections::BTreeMap;

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
        if i > 0 && !(line.contains("\"invoke\"") || line.contains("\"complete\"")) {
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
