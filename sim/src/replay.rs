//! Replay: re-execute the nodes of a recorded run against the trace's inputs and check that
//! every output matches. The network, the faults and the harness are not re-run: the trace
//! says what each node received, and the node must answer exactly as recorded.

use crate::faults::Fault;
use crate::node::{Ctx, Durable, Node, NodeId, Output, TimerId};
use crate::panics::catch;
use crate::rng::{stream, Purpose};
use crate::trace::{Record, StepInput, Trace};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The first place where a replayed node did not do what the trace says.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Line of the trace file.
    pub line: usize,
    /// Event number of the record.
    pub event: u64,
    pub node: NodeId,
    pub what: String,
    /// What the trace recorded and what the replay produced (Null when not applicable).
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
}

/// Replays every step of `trace` against fresh nodes built from `config`.
pub fn replay<N: Node>(
    config: &N::Config,
    trace: &Trace,
) -> Result<ReplaySummary, Box<Divergence>> {
    let (mut seed, _, _, specs) = trace.header();
    let mut slots: Vec<Slot<N>> = (0..specs.len())
        .map(|id| Slot {
            node: None,
            inc: 0,
            durable: N::Durable::default(),
            rng: stream(seed, Purpose::Node { id, incarnation: 0 }),
            next_timer: 0,
        })
        .collect();
    let mut summary = ReplaySummary {
        steps: 0,
        outputs: 0,
        panics: 0,
    };
    let mut outputs: Vec<Output<N>> = Vec::new();
    for (line, record) in &trace.records {
        let line = *line;
        match record {
            Record::Branch { seed: branch, .. } => {
                // Every stream is drawn from the branch's seed from here on, nodes' too.
                seed = *branch;
                for (id, slot) in slots.iter_mut().enumerate() {
                    slot.rng = stream(
                        seed,
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
                let actual_reply;
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
                            decode(msg).map_err(|e| div(e, msg.clone(), Value::Null))?,
                        ),
                        StepInput::Timer { id: timer, tag } => Call::Timer(*timer, *tag),
                        StepInput::Input { input } => Call::Input(
                            decode(input).map_err(|e| div(e, input.clone(), Value::Null))?,
                        ),
                    };
                    let caught = catch(|| {
                        let mut ctx = Ctx::detached(
                            *t,
                            *id,
                            &mut slot.rng,
                            &mut outputs,
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
                                Some(serde_json::json!(node.on_input(&mut ctx, inp)))
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
                            continue;
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
                let mut actual: Vec<Value> = Vec::with_capacity(outputs.len());
                // Marks are not recorded (they are coverage, not behaviour).
                for (i, o) in outputs
                    .drain(..)
                    .filter(|o| !matches!(o, Output::Mark(_)))
                    .enumerate()
                {
                    let mut v = o.to_value();
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
                if let Some(i) =
                    (0..out.len().max(actual.len())).find(|&i| out.get(i) != actual.get(i))
                {
                    return Err(div(
                        format!(
                            "output {i} differs ({} recorded, {} replayed)",
                            out.len(),
                            actual.len()
                        ),
                        out.get(i).cloned().unwrap_or(Value::Null),
                        actual.get(i).cloned().unwrap_or(Value::Null),
                    ));
                }
                // A unit or None reply is recorded as `null`, which reads back as no reply.
                let null = Value::Null;
                if reply.as_ref().unwrap_or(&null) != actual_reply.as_ref().unwrap_or(&null) {
                    return Err(div(
                        "reply differs".into(),
                        reply.clone().unwrap_or(Value::Null),
                        actual_reply.unwrap_or(Value::Null),
                    ));
                }
                summary.steps += 1;
                summary.outputs += actual.len() as u64;
            }
            _ => {}
        }
    }
    Ok(summary)
}

fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("cannot read payload: {e}"))
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
