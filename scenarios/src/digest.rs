//! A compact, human-readable digest of a run for trace regressions (insta snapshots): faults,
//! leaders and terms over time, harness notes, per-node commit progress, per-client results
//! and the verdict. It reads a trace one record at a time ([`TraceReader`]), so a run of
//! millions of events costs no more memory than its digest, and it stays short enough that a
//! behaviour change reads as a small diff. It digests behaviour, not encoding: the same run
//! gives the same digest in trace format 1 and 2.

use serde_json::{json, Value};
use sim::fmt_time;
use sim::trace::{Record, TraceReader};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;

#[derive(Default)]
struct Client {
    ops: u64,
    by_kind: BTreeMap<String, u64>,
    /// FNV-1a over the results, so a changed result shows without listing them all.
    results_hash: u64,
}

/// The digest of the JSON Lines trace read from `input`.
pub fn digest(input: impl BufRead) -> Result<String, String> {
    let mut out = String::new();
    let mut names: Vec<String> = Vec::new();
    let mut commits: BTreeMap<usize, u64> = BTreeMap::new();
    let mut applied: BTreeMap<usize, u64> = BTreeMap::new();
    let mut clients: BTreeMap<usize, Client> = BTreeMap::new();
    let mut events = 0u64;
    let mut reader = TraceReader::new(input)?;
    while let Some(next) = reader.next_record() {
        let (_, record) = next?;
        let rec = fields(&reader, &record);
        let t = rec["t"].as_u64().unwrap_or(0);
        let name = |n: &Value| {
            n.as_u64()
                .and_then(|n| names.get(n as usize).cloned())
                .unwrap_or_else(|| n.to_string())
        };
        match rec["type"].as_str().unwrap_or("") {
            "header" => {
                names = rec["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| n["name"].as_str().unwrap_or("?").to_string())
                    .collect();
                let _ = writeln!(
                    out,
                    "scenario {} seed {}",
                    rec["source"].as_str().unwrap_or("?"),
                    rec["seed"]
                );
                let drawn = &rec["drawn"];
                if drawn.as_object().is_some_and(|m| !m.is_empty()) {
                    let _ = writeln!(out, "drawn    {drawn}");
                }
            }
            "step" => {
                events += 1;
                let node = rec["node"].as_u64().unwrap_or(0) as usize;
                for o in rec["out"].as_array().into_iter().flatten() {
                    let Some(obs) = o.get("obs") else { continue };
                    if let Some(r) = obs.get("role") {
                        if r["role"] == "leader" {
                            let _ = writeln!(
                                out,
                                "{:>9}  {} leads term {}",
                                fmt_time(t),
                                name(&rec["node"]),
                                r["term"]
                            );
                        }
                    } else if let Some(c) = obs.get("commit") {
                        commits.insert(node, c["commit_index"].as_u64().unwrap_or(0));
                    } else if let Some(a) = obs.get("applied") {
                        applied.insert(node, a["index"].as_u64().unwrap_or(0));
                    } else if let Some(c) = obs.get("complete") {
                        let cl = clients.entry(node).or_default();
                        cl.ops += 1;
                        let kind = c["op"]
                            .as_object()
                            .and_then(|m| m.keys().next().cloned())
                            .unwrap_or_default();
                        *cl.by_kind.entry(kind).or_default() += 1;
                        for b in c["result"].to_string().bytes() {
                            cl.results_hash =
                                (cl.results_hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                        }
                    }
                }
            }
            "fault" => {
                events += 1;
                let noop = if rec["noop"] == true { " (no-op)" } else { "" };
                let _ = writeln!(out, "{:>9}  fault {}{noop}", fmt_time(t), rec["fault"]);
            }
            "note" => {
                let text = rec["text"].as_str().unwrap_or("");
                let short: String = text.chars().take(160).collect();
                let _ = writeln!(
                    out,
                    "{:>9}  note {short}{}",
                    fmt_time(t),
                    if short.len() < text.len() { " ..." } else { "" }
                );
            }
            "drop" => events += 1,
            "result" => {
                for (node, c) in &commits {
                    let _ = writeln!(
                        out,
                        "commit   {} {c} (applied {})",
                        names.get(*node).map_or("?", String::as_str),
                        applied.get(node).copied().unwrap_or(0)
                    );
                }
                for (node, c) in &clients {
                    let kinds: Vec<String> =
                        c.by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
                    let _ = writeln!(
                        out,
                        "client   {} {} ops ({}), results #{:016x}",
                        names.get(*node).map_or("?", String::as_str),
                        c.ops,
                        kinds.join(", "),
                        c.results_hash
                    );
                }
                let s = &rec["stats"];
                let _ = writeln!(
                    out,
                    "events   {events}, {} messages sent, {} dropped",
                    s["messages_sent"],
                    s["dropped_random"].as_u64().unwrap_or(0)
                        + s["dropped_partition"].as_u64().unwrap_or(0)
                        + s["dropped_crashed"].as_u64().unwrap_or(0)
                );
                match rec["violation"].as_object() {
                    Some(v) => {
                        let _ = writeln!(
                            out,
                            "verdict  VIOLATION {} at {} (event {}): {}",
                            v["property"].as_str().unwrap_or("?"),
                            fmt_time(v["time"].as_u64().unwrap_or(0)),
                            v["event"],
                            v["detail"].as_str().unwrap_or("")
                        );
                    }
                    None if rec["verdict"] == "unknown" => {
                        for u in rec["unknown"].as_array().into_iter().flatten() {
                            let _ = writeln!(
                                out,
                                "verdict  UNKNOWN {} at {} (event {}): {}",
                                u["check"].as_str().unwrap_or("?"),
                                fmt_time(u["time"].as_u64().unwrap_or(0)),
                                u["event"],
                                u["detail"].as_str().unwrap_or("")
                            );
                        }
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "verdict  ok at {}",
                            fmt_time(rec["end_time"].as_u64().unwrap_or(0))
                        );
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The fields of a record that [`digest`] reads, as JSON: a step's `t`, `node` and its
/// outputs' observations (resolved); any other record whole.
fn fields<R: BufRead>(reader: &TraceReader<R>, record: &Record) -> Value {
    match record {
        Record::Step { t, node, out, .. } => {
            let obs: Vec<Value> = out
                .iter()
                .filter_map(|o| o.get("obs"))
                .map(|o| json!({ "obs": reader.resolve(o) }))
                .collect();
            json!({"type": "step", "t": t, "node": node, "out": obs})
        }
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}
