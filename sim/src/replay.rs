//! Replay: re-execute the nodes of a recorded run against the trace's inputs and check that
//! every output matches. The network, the faults and the harness are not re-run: the trace
//! says what each node received, and the node must answer exactly as recorded.
//!
//! A trace is replayed as it is read ([`replay_stream`]), so memory stays bounded by the
//! cluster's state. Outputs are compared as JSON values, with the trace's references resolved
//! on the way ([`same`]): a recorded snapshot is compared with the replayed one byte by byte,
//! without turning either into JSON numbers.

use crate::faults::Fault;
use crate::node::{Ctx, Durable, Node, NodeId, Output, TimerId};
use crate::panics::catch;
use crate::rng::{stream, Purpose};
use crate::trace::compact::{Blobs, Limits};
use crate::trace::table::{bytes_value, ref_id, Blob, BlobTable};
use crate::trace::{output_text, Record, StepInput, Trace, TraceReader};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::io::BufRead;

/// The first place where a replayed node did not do what the trace says.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Line of the trace file.
    pub line: usize,
    /// Event number of the record.
    pub event: u64,
    pub node: NodeId,
    pub what: String,
    /// What the trace recorded and what the replay produced (Null when not applicable; long
    /// strings and byte strings cut).
    pub expected: Value,
    pub actual: Value,
}

/// What a successful replay covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    pub steps: u64,
    pub outputs: u64,
    /// Recorded panics the replay reproduced (same message, same place).
    pub panics: u64,
}

/// A recorded step input, decoded into the node's types.
enum Call<N: Node> {
    Start,
    Deliver(NodeId, N::Msg),
    Timer(TimerId, u64),
    Input(N::Input),
}

/// How much of a long string or byte string a divergence shows.
const SHOWN: usize = 2000;

struct Slot<N: Node> {
    node: Option<N>,
    inc: u32,
    durable: N::Durable,
    rng: ChaCha8Rng,
    next_timer: TimerId,
}

/// Replays a trace held in memory (its payloads expanded, as [`Trace::parse`] gives them).
pub fn replay<N: Node>(
    config: &N::Config,
    trace: &Trace,
) -> Result<ReplaySummary, Box<Divergence>> {
    let (seed, _, _, specs) = trace.header();
    let mut r = Replayer::<N>::new(config, seed, specs.len());
    let blobs = BlobTable::default();
    for (line, record) in &trace.records {
        r.record(*line, record, &blobs)?;
    }
    Ok(r.summary)
}

/// Replays a trace as it is read. Outer error: the trace cannot be read (the error names the
/// line); inner: the replay diverged.
pub fn replay_stream<N: Node, R: BufRead>(
    config: &N::Config,
    reader: &mut TraceReader<R>,
) -> Result<Result<ReplaySummary, Box<Divergence>>, String> {
    let (seed, _, _, specs) = reader.header();
    let mut r = Replayer::<N>::new(config, seed, specs.len());
    while let Some(next) = reader.next_record() {
        let (line, record) = next?;
        if let Err(d) = r.record(line, &record, reader.blobs()) {
            return Ok(Err(d));
        }
    }
    Ok(Ok(r.summary))
}

/// The replayed nodes.
struct Replayer<'c, N: Node> {
    config: &'c N::Config,
    seed: u64,
    slots: Vec<Slot<N>>,
    summary: ReplaySummary,
    outputs: Vec<Output<N>>,
}

impl<'c, N: Node> Replayer<'c, N> {
    fn new(config: &'c N::Config, seed: u64, nodes: usize) -> Self {
        Replayer {
            config,
            seed,
            slots: (0..nodes)
                .map(|id| Slot {
                    node: None,
                    inc: 0,
                    durable: N::Durable::default(),
                    rng: stream(seed, Purpose::Node { id, incarnation: 0 }),
                    next_timer: 0,
                })
                .collect(),
            summary: ReplaySummary {
                steps: 0,
                outputs: 0,
                panics: 0,
            },
            outputs: Vec::new(),
        }
    }

    /// Replays one record.
    fn record(
        &mut self,
        line: usize,
        record: &Record,
        blobs: &BlobTable,
    ) -> Result<(), Box<Divergence>> {
        let (config, seed) = (self.config, self.seed);
        let slots = &mut self.slots;
        let summary = &mut self.summary;
        let outputs = &mut self.outputs;
        match record {
            Record::Branch { seed: branch, .. } => {
                // Every stream is drawn from the branch's seed from here on, nodes' too
                // (and a node that starts later draws from it as well).
                self.seed = *branch;
                for (id, slot) in slots.iter_mut().enumerate() {
                    slot.rng = stream(
                        *branch,
                        Purpose::Node {
                            id,
                            incarnation: slot.inc,
                        },
                    );
                }
            }
            Record::Fault {
                fault: Fault::Crash(id),
                noop: false,
                ..
            } => {
                let slot = slots.get_mut(*id).ok_or_else(|| bad_node(line, 0, *id))?;
                slot.node = None;
                slot.inc += 1;
            }
            Record::Step {
                n,
                t,
                node: id,
                inc,
                input,
                out,
                reply,
                panic,
            } => {
                let div = |what: String, expected: Value, actual: Value| {
                    Box::new(Divergence {
                        line,
                        event: *n,
                        node: *id,
                        what,
                        expected,
                        actual,
                    })
                };
                let slot = slots.get_mut(*id).ok_or_else(|| bad_node(line, *n, *id))?;
                if *inc != slot.inc {
                    return Err(div(
                        "incarnation differs".into(),
                        Value::from(*inc),
                        Value::from(slot.inc),
                    ));
                }
                let actual_reply: Option<Vec<u8>>;
                {
                    let is_start = matches!(input, StepInput::Start);
                    if is_start {
                        slot.rng = stream(
                            seed,
                            Purpose::Node {
                                id: *id,
                                incarnation: slot.inc,
                            },
                        );
                        slot.next_timer = 0;
                    } else if slot.node.is_none() {
                        return Err(div(
                            "the trace gives input to a node that is down in the replay".into(),
                            Value::Null,
                            Value::Null,
                        ));
                    }
                    // Decode first, so a bad payload is a divergence and not a node panic.
                    let call: Call<N> = match input {
                        StepInput::Start => Call::Start,
                        StepInput::Deliver { from, msg, .. } => Call::Deliver(
                            *from,
                            decode(msg, blobs)
                                .map_err(|e| div(e, brief(msg, blobs), Value::Null))?,
                        ),
                        StepInput::Timer { id: timer, tag } => Call::Timer(*timer, *tag),
                        StepInput::Input { input } => Call::Input(
                            decode(input, blobs)
                                .map_err(|e| div(e, brief(input, blobs), Value::Null))?,
                        ),
                    };
                    let caught = catch(|| {
                        let mut ctx = Ctx::detached(
                            *t,
                            *id,
                            &mut slot.rng,
                            &mut *outputs,
                            &mut slot.next_timer,
                        );
                        match call {
                            Call::Start => {
                                slot.node = Some(N::start(config, &mut ctx, &slot.durable));
                                None
                            }
                            Call::Deliver(from, msg) => {
                                let node = slot.node.as_mut().expect("checked");
                                node.on_message(&mut ctx, from, msg);
                                None
                            }
                            Call::Timer(timer, tag) => {
                                let node = slot.node.as_mut().expect("checked");
                                node.on_timer(&mut ctx, timer, tag);
                                None
                            }
                            Call::Input(inp) => {
                                let node = slot.node.as_mut().expect("checked");
                                Some(encode(&node.on_input(&mut ctx, inp), &mut Vec::new()))
                            }
                        }
                    });
                    match (caught, panic) {
                        (Ok(r), None) => actual_reply = r,
                        (Err(p), Some(recorded)) if p == *recorded => {
                            // Reproduced: the engine discarded its outputs and stopped there.
                            slot.node = None;
                            outputs.clear();
                            summary.steps += 1;
                            summary.panics += 1;
                            return Ok(());
                        }
                        (Err(p), recorded) => {
                            return Err(div(
                                match recorded {
                                    Some(_) => "the node panicked differently".into(),
                                    None => format!("the replayed node {p}"),
                                },
                                serde_json::json!(recorded),
                                serde_json::json!(p),
                            ))
                        }
                        (Ok(_), Some(recorded)) => {
                            return Err(div(
                                "the trace records a panic here; the replayed node did not panic"
                                    .into(),
                                serde_json::json!(recorded),
                                Value::Null,
                            ))
                        }
                    }
                }
                // Large strings and byte strings of the replayed outputs, compared with the
                // recorded blobs without building JSON numbers.
                let mut local = Vec::new();
                let mut actual: Vec<Value> = Vec::with_capacity(outputs.len());
                // Marks are not recorded (they are coverage, not behaviour).
                for (i, o) in outputs
                    .drain(..)
                    .filter(|o| !matches!(o, Output::Mark(_)))
                    .enumerate()
                {
                    let mut text = Vec::new();
                    output_text(&mut text, &o, &mut Local(&mut local), Limits::WRITER)
                        .expect("a replayed output serializes");
                    let mut v: Value =
                        serde_json::from_slice(&text).expect("the output's text is JSON");
                    // The message id and fate are the network's, not the node's: take them
                    // from the record.
                    if let (Some(send), Some(rec)) =
                        (v.get_mut("send"), out.get(i).and_then(|r| r.get("send")))
                    {
                        for key in ["id", "lost", "dup"] {
                            if let Some(x) = rec.get(key) {
                                send[key] = x.clone();
                            }
                        }
                    }
                    if let Output::Persist(w) = &o {
                        slot.durable.apply(w);
                    }
                    actual.push(v);
                }
                let null = Value::Null;
                let differs = |i: usize| match (out.get(i), actual.get(i)) {
                    (Some(r), Some(a)) => !same(r, a, blobs, &local),
                    _ => true,
                };
                if let Some(i) = (0..out.len().max(actual.len())).find(|&i| differs(i)) {
                    return Err(div(
                        format!(
                            "output {i} differs ({} recorded, {} replayed)",
                            out.len(),
                            actual.len()
                        ),
                        out.get(i).map_or(Value::Null, |v| brief(v, blobs)),
                        actual
                            .get(i)
                            .map_or(Value::Null, |v| brief_local(v, &local)),
                    ));
                }
                // A unit or None reply is recorded as `null`, which reads back as no reply.
                let actual_reply: Option<Value> =
                    actual_reply.map(|text| serde_json::from_slice(&text).expect("JSON"));
                if !same(
                    reply.as_ref().unwrap_or(&null),
                    actual_reply.as_ref().unwrap_or(&null),
                    blobs,
                    &[],
                ) {
                    return Err(div(
                        "reply differs".into(),
                        reply.as_ref().map_or(Value::Null, |v| brief(v, blobs)),
                        actual_reply.unwrap_or(Value::Null),
                    ));
                }
                summary.steps += 1;
                summary.outputs += actual.len() as u64;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Refs of the replayed side's large strings and byte strings (kept in a local list) start
/// here, far from any id a trace uses.
const LOCAL: u64 = 1 << 62;

/// Keeps a replayed output's large strings and byte strings aside.
struct Local<'a>(&'a mut Vec<Blob>);

impl Blobs for Local<'_> {
    fn value(&mut self, _: &[u8]) -> Option<u64> {
        None
    }
    fn string(&mut self, s: &str) -> Option<u64> {
        self.0.push(Blob::Str(s.to_string()));
        Some(LOCAL + self.0.len() as u64 - 1)
    }
    fn bytes(&mut self, b: &[u8]) -> Option<u64> {
        self.0.push(Blob::Bytes(b.to_vec()));
        Some(LOCAL + self.0.len() as u64 - 1)
    }
}

/// The JSON text of a reply (inline: replies are compared whole).
fn encode<T: serde::Serialize>(v: &T, buf: &mut Vec<u8>) -> Vec<u8> {
    crate::trace::compact::encode(v, buf, &mut crate::trace::compact::Inline, Limits::NONE)
        .expect("a reply serializes");
    std::mem::take(buf)
}

fn decode<T: serde::de::DeserializeOwned>(v: &Value, blobs: &BlobTable) -> Result<T, String> {
    crate::trace::table_decode(v, blobs).map_err(|e| format!("cannot read payload: {e}"))
}

fn brief(v: &Value, blobs: &BlobTable) -> Value {
    blobs.resolve_with(v, SHOWN)
}

fn brief_local(v: &Value, local: &[Blob]) -> Value {
    match v {
        Value::Object(m) => match local_blob(v, local) {
            Some(Blob::Str(s)) => brief(&Value::String(s.clone()), &BlobTable::default()),
            Some(Blob::Bytes(b)) => bytes_value(b, SHOWN),
            _ => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), brief_local(x, local)))
                    .collect(),
            ),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| brief_local(x, local)).collect()),
        _ => brief(v, &BlobTable::default()),
    }
}

fn local_blob<'a>(v: &Value, local: &'a [Blob]) -> Option<&'a Blob> {
    let id = ref_id(v)?.checked_sub(LOCAL)?;
    local.get(usize::try_from(id).ok()?)
}

/// What a value stands for once references are followed.
enum Target<'a> {
    Value(&'a Value),
    Str(&'a str),
    Bytes(&'a [u8]),
}

fn target<'a>(mut v: &'a Value, blobs: &'a BlobTable, local: &'a [Blob]) -> Target<'a> {
    loop {
        let blob = match ref_id(v) {
            Some(id) if id >= LOCAL => local_blob(v, local),
            Some(id) => blobs.get(id),
            None => None,
        };
        match blob {
            Some(Blob::Value(inner)) => v = inner,
            Some(Blob::Str(s)) => return Target::Str(s),
            Some(Blob::Bytes(b)) => return Target::Bytes(b),
            None => return Target::Value(v),
        }
    }
}

/// Whether a recorded value and a replayed one are the same JSON once their references are
/// resolved (the recorded side's in the trace's blobs, the replayed side's in `local`). Objects
/// compare as sets of fields, as `serde_json` values do.
fn same(recorded: &Value, replayed: &Value, blobs: &BlobTable, local: &[Blob]) -> bool {
    let bytes_eq = |b: &[u8], a: &[Value]| {
        b.len() == a.len()
            && b.iter()
                .zip(a)
                .all(|(x, y)| y.as_u64() == Some(u64::from(*x)))
    };
    match (
        target(recorded, blobs, local),
        target(replayed, blobs, local),
    ) {
        (Target::Value(x), Target::Value(y)) => match (x, y) {
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| same(v, w, blobs, local)))
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(v, w)| same(v, w, blobs, local))
            }
            (x, y) => x == y,
        },
        (Target::Str(s), Target::Str(t)) => s == t,
        (Target::Str(s), Target::Value(Value::String(t)))
        | (Target::Value(Value::String(t)), Target::Str(s)) => s == t,
        (Target::Bytes(b), Target::Bytes(c)) => b == c,
        (Target::Bytes(b), Target::Value(Value::Array(a)))
        | (Target::Value(Value::Array(a)), Target::Bytes(b)) => bytes_eq(b, a),
        _ => false,
    }
}

fn bad_node(line: usize, event: u64, node: NodeId) -> Box<Divergence> {
    Box::new(Divergence {
        line,
        event,
        node,
        what: format!("node {node} is not in the header"),
        expected: Value::Null,
        actual: Value::Null,
    })
}
