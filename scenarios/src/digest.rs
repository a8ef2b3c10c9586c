//! A compact, human-readable digest of a run for trace regressions (insta snapshots): faults,
//! leaders and terms over time, harness notes, per-node commit progress, per-client results
//! and the verdict. It reads a trace one line at a time, so a run of millions of events costs
//! no more memory than its digest, and it stays short enough that a behaviour change reads as
//! a small diff.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sim::fmt_time;
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
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = shallow(&line).map_err(|e| format!("line {}: {e}", i + 1))?;
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

/// The top-level fields of a record that [`digest`] reads. Any other field reads as null in
/// the digest: a field read there must be listed here (the trace snapshots would show it).
const KEPT: &[&str] = &[
    "type",
    "t",
    "node",
    "nodes",
    "source",
    "seed",
    "drawn",
    "fault",
    "noop",
    "text",
    "verdict",
    "violation",
    "unknown",
    "end_time",
    "stats",
];

/// One trace line parsed as far as [`digest`] looks into it: the [`KEPT`] fields, and of
/// `out` only each output's `obs`. Message payloads, snapshots and durable writes (nearly all
/// of a trace's bytes: a KV snapshot's data is an array of numbers) are checked for syntax
/// (not for the range of numbers) but never built as values: the digest of a large trace
/// takes a third of the time. The fields it keeps read exactly as in the whole line parsed
/// as a `Value`.
fn shallow(line: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(line);
    let rec = de.deserialize_any(Shallow::Record)?;
    de.end()?;
    Ok(rec)
}

/// What [`shallow`] keeps of a JSON value, by where the value sits.
#[derive(Clone, Copy)]
enum Shallow {
    /// A line: the [`KEPT`] fields, and `out`.
    Record,
    /// A step's `out`: an array of outputs.
    Out,
    /// One output: only its `obs` field.
    Output,
}

impl<'de> DeserializeSeed<'de> for Shallow {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Anything but the container a level expects reads as null: the digest finds nothing in it,
/// as it finds nothing in such a value whole.
impl<'de> Visitor<'de> for Shallow {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Shallow::Out = self else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        };
        let mut outs = Vec::new();
        while let Some(o) = seq.next_element_seed(Shallow::Output)? {
            outs.push(o);
        }
        Ok(Value::Array(outs))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if let Shallow::Out = self {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        }
        // Repeated keys: the last one wins, as when parsing a `Value`.
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match self {
                Shallow::Record if key == "out" => map.next_value_seed(Shallow::Out)?,
                Shallow::Record if KEPT.contains(&key.as_str()) => map.next_value::<Value>()?,
                Shallow::Output if key == "obs" => map.next_value::<Value>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            kept.insert(key, value);
        }
        Ok(Value::Object(kept))
    }
}
