//! Replay: re-execute the nodes of a recorded run against the trace's inputs and check that
//! every output matches. The network, the faults and the harness are not re-run: the trace
//! says what each node received, and the node must answer exactly as recorded.
//!
//! A trace is replayed as it is read ([`replay_stream`]), so memory stays bounded by the
//! cluster's state. Each replayed output is written as the trace writes payloads and compared
//! with the recorded text, references followed on both sides ([`same_text`]); only when the
//! texts differ are both parsed and compared as JSON values ([`values::same`]), which decides
//! (so a trace written another way, with fields in another order, still replays), and a real
//! difference is a divergence. A recorded snapshot is compared with the replayed one byte for
//! byte, never as JSON numbers. A delivery hands the node the message its replayed sender sent
//! (which matched the recorded send), so recorded messages are never decoded.

mod values;

use crate::clock::NodeClock;
use crate::faults::Fault;
use crate::node::{Ctx, Durable, Node, NodeId, Output, TimerId};
use crate::panics::{catch, Panic};
use crate::rng::{stream, Purpose};
use crate::trace::compact::{self, Limits};
use crate::trace::same_text::same_text;
use crate::trace::table::{Blob, BlobTable};
use crate::trace::{
    output_text, NodeSpec, RawRecord, RawSend, Record, StepInput, Trace, TraceReader,
};
use rand_chacha::ChaCha8Rng;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;
use values::{brief, brief_local, decode, encode, same, Local};

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

struct Slot<N: Node> {
    node: Option<N>,
    inc: u32,
    durable: N::Durable,
    rng: ChaCha8Rng,
    next_timer: TimerId,
    /// The node's clock: from the header, changed by the trace's clock faults.
    clock: NodeClock,
}

/// Replays a trace held in memory (its payloads expanded, as [`Trace::parse`] gives them).
pub fn replay<N: Node>(
    config: &N::Config,
    trace: &Trace,
) -> Result<ReplaySummary, Box<Divergence>> {
    let (seed, _, _, specs) = trace.header();
    let mut r = Replayer::<N>::new(config, seed, specs);
    let blobs = BlobTable::default();
    for (line, record) in &trace.records {
        r.record(*line, Step::Parsed(record), &blobs)?;
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
    let mut r = Replayer::<N>::new(config, seed, specs);
    while let Some(next) = reader.next_raw() {
        let (line, record, blobs) = next?;
        let step = match &record {
            RawRecord::Step(s) => Step::Raw(s),
            RawRecord::Other(rec) => Step::Parsed(rec),
        };
        if let Err(d) = r.record(line, step, blobs) {
            return Ok(Err(d));
        }
    }
    Ok(Ok(r.summary))
}

/// A record to replay: parsed, or a step left as text.
enum Step<'a> {
    Parsed(&'a Record),
    Raw(&'a crate::trace::RawStep<'a>),
}

/// The recorded outputs and reply of a step, as values or as text.
enum Recorded<'a> {
    Values(&'a [Value], Option<&'a Value>),
    Text(
        &'a [&'a RawValue],
        Option<&'a RawValue>,
        &'a [Option<RawSend<'a>>],
    ),
}

/// The replayed nodes.
struct Replayer<'c, N: Node> {
    config: &'c N::Config,
    seed: u64,
    slots: Vec<Slot<N>>,
    summary: ReplaySummary,
    outputs: Vec<Output<N>>,
    /// Messages the replayed nodes sent and the trace has not yet delivered or dropped: id →
    /// (message, copies left).
    in_flight: HashMap<u64, (N::Msg, u32)>,
}

/// Where a recorded send's network fields are.
struct Net {
    id: Option<u64>,
    lost: bool,
    dup: bool,
}

impl<'c, N: Node> Replayer<'c, N> {
    fn new(config: &'c N::Config, seed: u64, specs: &[NodeSpec]) -> Self {
        Replayer {
            config,
            seed,
            slots: (0..specs.len())
                .map(|id| Slot {
                    node: None,
                    inc: 0,
                    durable: N::Durable::default(),
                    rng: stream(seed, Purpose::Node { id, incarnation: 0 }),
                    next_timer: 0,
                    clock: NodeClock::new(specs[id].clock),
                })
                .collect(),
            summary: ReplaySummary {
                steps: 0,
                outputs: 0,
                panics: 0,
            },
            outputs: Vec::new(),
            in_flight: HashMap::new(),
        }
    }

    /// One copy of message `id` arrives or is dropped: its message, if a replayed node sent it.
    fn arrive(&mut self, id: u64) -> Option<N::Msg> {
        let (msg, copies) = self.in_flight.get_mut(&id)?;
        *copies -= 1;
        if *copies == 0 {
            return self.in_flight.remove(&id).map(|(m, _)| m);
        }
        Some(msg.clone())
    }

    /// Replays one record.
    fn record(
        &mut self,
        line: usize,
        step: Step<'_>,
        blobs: &BlobTable,
    ) -> Result<(), Box<Divergence>> {
        let (n, t, id, inc, input, panic, recorded) = match step {
            Step::Raw(s) => (
                s.n,
                s.t,
                s.node,
                s.inc,
                &s.input,
                &s.panic,
                Recorded::Text(&s.out, s.reply, &s.sends),
            ),
            Step::Parsed(Record::Step {
                n,
                t,
                node,
                inc,
                input,
                out,
                reply,
                panic,
            }) => (
                *n,
                *t,
                *node,
                *inc,
                input,
                panic,
                Recorded::Values(out, reply.as_ref()),
            ),
            Step::Parsed(Record::Branch { seed: branch, .. }) => {
                // Every stream is drawn from the branch's seed from here on, nodes' too
                // (and a node that starts later draws from it as well).
                self.seed = *branch;
                for (id, slot) in self.slots.iter_mut().enumerate() {
                    slot.rng = stream(
                        *branch,
                        Purpose::Node {
                            id,
                            incarnation: slot.inc,
                        },
                    );
                }
                return Ok(());
            }
            Step::Parsed(Record::Fault {
                fault: Fault::Crash(id),
                noop: false,
                ..
            }) => {
                let slot = self
                    .slots
                    .get_mut(*id)
                    .ok_or_else(|| bad_node(line, 0, *id))?;
                slot.node = None;
                slot.inc += 1;
                return Ok(());
            }
            Step::Parsed(Record::Fault {
                t,
                fault: fault @ (Fault::ClockJump { .. } | Fault::ClockDrift { .. }),
                noop: false,
                ..
            }) => {
                let node = fault.nodes()[0];
                let slot = self
                    .slots
                    .get_mut(node)
                    .ok_or_else(|| bad_node(line, 0, node))?;
                match fault {
                    Fault::ClockJump { by_ms, .. } => {
                        slot.clock.jump(crate::clock::jump_us(*by_ms))
                    }
                    Fault::ClockDrift { drift_ppm, .. } => slot.clock.set_drift(*t, *drift_ppm),
                    _ => unreachable!("matched above"),
                }
                return Ok(());
            }
            Step::Parsed(Record::Drop { id, .. }) => {
                self.arrive(*id);
                return Ok(());
            }
            Step::Parsed(_) => return Ok(()),
        };
        let div = |what: String, expected: Value, actual: Value| {
            Box::new(Divergence {
                line,
                event: n,
                node: id,
                what,
                expected,
                actual,
            })
        };
        let Some(reply) = self.execute(line, n, t, id, inc, input, panic, blobs, &div)? else {
            return Ok(());
        };
        // Marks are not recorded (they are coverage, not behaviour).
        let mut outputs = std::mem::take(&mut self.outputs);
        outputs.retain(|o| !matches!(o, Output::Mark(_)));
        let nets = self.compare(&outputs, reply.as_deref(), recorded, blobs, &div);
        let nets = match nets {
            Ok(nets) => nets,
            Err(d) => {
                outputs.clear();
                self.outputs = outputs;
                return Err(d);
            }
        };
        self.summary.steps += 1;
        self.summary.outputs += outputs.len() as u64;
        let slot = &mut self.slots[id];
        for (o, net) in outputs.drain(..).zip(nets) {
            match o {
                Output::Persist(w) => slot.durable.apply(&w),
                Output::Send { msg, .. } => {
                    if let (Some(mid), false) = (net.id, net.lost) {
                        self.in_flight
                            .insert(mid, (msg, if net.dup { 2 } else { 1 }));
                    }
                }
                _ => {}
            }
        }
        self.outputs = outputs;
        Ok(())
    }

    /// Runs the step; its outputs are left in `self.outputs`. Returns the reply's text (None
    /// for a step that takes no reply), or None if the step ended in the recorded panic.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        line: usize,
        n: u64,
        t: u64,
        id: NodeId,
        inc: u32,
        input: &StepInput,
        panic: &Option<Panic>,
        blobs: &BlobTable,
        div: &dyn Fn(String, Value, Value) -> Box<Divergence>,
    ) -> Result<Option<Option<Vec<u8>>>, Box<Divergence>> {
        let seed = self.seed;
        let slot = self.slots.get(id).ok_or_else(|| bad_node(line, n, id))?;
        if inc != slot.inc {
            return Err(div(
                "incarnation differs".into(),
                Value::from(inc),
                Value::from(slot.inc),
            ));
        }
        let is_start = matches!(input, StepInput::Start);
        if !is_start && slot.node.is_none() {
            return Err(div(
                "the trace gives input to a node that is down in the replay".into(),
                Value::Null,
                Value::Null,
            ));
        }
        // Decode first, so a bad payload is a divergence and not a node panic.
        let call: Call<N> = match input {
            StepInput::Start => Call::Start,
            StepInput::Deliver { from, msg, id: mid } => {
                let sent = self.arrive(*mid);
                let msg = match (msg.is_null(), sent) {
                    (false, _) => {
                        decode(msg, blobs).map_err(|e| div(e, brief(msg, blobs), Value::Null))?
                    }
                    (true, Some(m)) => m,
                    (true, None) => {
                        return Err(div(
                            format!(
                                "message {mid} is delivered here, but no replayed node sent it"
                            ),
                            Value::Null,
                            Value::Null,
                        ))
                    }
                };
                Call::Deliver(*from, msg)
            }
            StepInput::Timer { id: timer, tag } => Call::Timer(*timer, *tag),
            StepInput::Input { input } => Call::Input(
                decode(input, blobs).map_err(|e| div(e, brief(input, blobs), Value::Null))?,
            ),
        };
        let config = self.config;
        let slot = &mut self.slots[id];
        if is_start {
            slot.rng = stream(
                seed,
                Purpose::Node {
                    id,
                    incarnation: slot.inc,
                },
            );
            slot.next_timer = 0;
        }
        let outputs = &mut self.outputs;
        let caught = catch(|| {
            let mut ctx = Ctx::detached_with_clock(
                t,
                slot.clock,
                id,
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
            (Ok(r), None) => Ok(Some(r)),
            (Err(p), Some(recorded)) if p == *recorded => {
                // Reproduced: the engine discarded its outputs and stopped there.
                slot.node = None;
                self.outputs.clear();
                self.summary.steps += 1;
                self.summary.panics += 1;
                Ok(None)
            }
            (Err(p), recorded) => {
                self.outputs.clear();
                Err(div(
                    match recorded {
                        Some(_) => "the node panicked differently".into(),
                        None => format!("the replayed node {p}"),
                    },
                    serde_json::json!(recorded),
                    serde_json::json!(p),
                ))
            }
            (Ok(_), Some(recorded)) => {
                self.outputs.clear();
                Err(div(
                    "the trace records a panic here; the replayed node did not panic".into(),
                    serde_json::json!(recorded),
                    Value::Null,
                ))
            }
        }
    }

    /// Compares the replayed outputs and reply with the recorded ones: as text first, as values
    /// if the texts differ. Returns each send's network fields (from the record).
    fn compare(
        &self,
        outputs: &[Output<N>],
        reply: Option<&[u8]>,
        recorded: Recorded<'_>,
        blobs: &BlobTable,
        div: &dyn Fn(String, Value, Value) -> Box<Divergence>,
    ) -> Result<Vec<Net>, Box<Divergence>> {
        let (out, rec_reply, sends) = match recorded {
            Recorded::Values(out, r) => {
                return compare_values(outputs, reply, out, r, blobs, div);
            }
            Recorded::Text(out, r, sends) => (out, r, sends),
        };
        if let Some(nets) = compare_text(outputs, reply, out, rec_reply, sends, blobs) {
            return Ok(nets);
        }
        // The slow way, which decides (and says what differs).
        let parse = |r: &RawValue| -> Value {
            serde_json::from_str(r.get()).expect("the reader parsed this text")
        };
        let out: Vec<Value> = out.iter().map(|r| parse(r)).collect();
        let rec_reply = rec_reply.map(parse);
        compare_values(outputs, reply, &out, rec_reply.as_ref(), blobs, div)
    }
}

/// The fast comparison: every output and the reply the same text as recorded (references
/// followed)? Returns the sends' network fields if so.
fn compare_text<N: Node>(
    outputs: &[Output<N>],
    reply: Option<&[u8]>,
    out: &[&RawValue],
    rec_reply: Option<&RawValue>,
    sends: &[Option<RawSend<'_>>],
    blobs: &BlobTable,
) -> Option<Vec<Net>> {
    if outputs.len() != out.len() {
        return None;
    }
    let mut local: Vec<Blob> = Vec::new();
    let mut text = Vec::new();
    let mut nets = Vec::with_capacity(outputs.len());
    for (i, o) in outputs.iter().enumerate() {
        local.clear();
        text.clear();
        let net = match (o, sends[i]) {
            (Output::Send { to, msg }, Some(s)) => {
                if *to != s.to {
                    return None;
                }
                compact::encode(msg, &mut text, &mut Local(&mut local), Limits::WRITER).ok()?;
                if !same_text(s.msg.get().as_bytes(), &text, blobs, &local) {
                    return None;
                }
                Net {
                    id: s.id,
                    lost: s.lost,
                    dup: s.dup,
                }
            }
            (Output::Send { .. }, None) => return None,
            (o, _) => {
                output_text(&mut text, o, &mut Local(&mut local), Limits::WRITER).ok()?;
                if !same_text(out[i].get().as_bytes(), &text, blobs, &local) {
                    return None;
                }
                Net {
                    id: None,
                    lost: false,
                    dup: false,
                }
            }
        };
        nets.push(net);
    }
    // A unit or None reply is recorded as `null`, which reads back as no reply.
    let rec = rec_reply.map_or(&b"null"[..], |r| r.get().as_bytes());
    let rep = reply.unwrap_or(b"null");
    same_text(rec, rep, blobs, &[]).then_some(nets)
}

/// The slow comparison, as JSON values: the first difference is the divergence.
fn compare_values<N: Node>(
    outputs: &[Output<N>],
    reply: Option<&[u8]>,
    out: &[Value],
    rec_reply: Option<&Value>,
    blobs: &BlobTable,
    div: &dyn Fn(String, Value, Value) -> Box<Divergence>,
) -> Result<Vec<Net>, Box<Divergence>> {
    for o in out {
        blobs
            .check_refs(o)
            .map_err(|e| div(e, brief(o, blobs), Value::Null))?;
    }
    // Large strings and byte strings of the replayed outputs, compared with the recorded
    // blobs without building JSON numbers.
    let mut local = Vec::new();
    let mut actual: Vec<Value> = Vec::with_capacity(outputs.len());
    let mut nets = Vec::with_capacity(outputs.len());
    for (i, o) in outputs.iter().enumerate() {
        let mut text = Vec::new();
        output_text(&mut text, o, &mut Local(&mut local), Limits::WRITER)
            .expect("a replayed output serializes");
        let mut v: Value = serde_json::from_slice(&text).expect("the output's text is JSON");
        // The message id and fate are the network's, not the node's: take them from the
        // record.
        let rec = out.get(i).and_then(|r| r.get("send"));
        if let (Some(send), Some(rec)) = (v.get_mut("send"), rec) {
            for key in ["id", "lost", "dup"] {
                if let Some(x) = rec.get(key) {
                    send[key] = x.clone();
                }
            }
        }
        nets.push(Net {
            id: rec.and_then(|r| r.get("id")).and_then(Value::as_u64),
            lost: rec
                .and_then(|r| r.get("lost"))
                .is_some_and(|l| !l.is_null()),
            dup: rec.and_then(|r| r.get("dup")) == Some(&Value::Bool(true)),
        });
        actual.push(v);
    }
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
    let null = Value::Null;
    let actual_reply: Option<Value> = reply.map(|text| serde_json::from_slice(text).expect("JSON"));
    if !same(
        rec_reply.unwrap_or(&null),
        actual_reply.as_ref().unwrap_or(&null),
        blobs,
        &[],
    ) {
        return Err(div(
            "reply differs".into(),
            rec_reply.map_or(Value::Null, |v| brief(v, blobs)),
            actual_reply.unwrap_or(Value::Null),
        ));
    }
    Ok(nets)
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
