//! Reading a step with its payloads left as text, for replay ([`super::TraceReader::next_raw`]):
//! the line is parsed once, its outputs and reply kept as raw JSON, and the checks the reader
//! makes of a parsed step (references in force, messages in flight) made on the text.

use super::{arrive, track_send};
use crate::node::{NodeId, Time};
use crate::panics::Panic;
use crate::trace::table::BlobTable;
use crate::trace::{Record, StepInput};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// A record as [`TraceReader::next_raw`] yields it: a step with its payloads as the JSON text
/// of the line, or any other record (or a step the reader could only read the long way).
pub enum RawRecord<'a> {
    Step(RawStep<'a>),
    Other(Record),
}

/// A step whose outputs and reply are left as text (references unresolved, checked to be in
/// force). A delivery's `msg` is not filled in (Null in format 2): the replay has the message
/// from the replayed send.
pub struct RawStep<'a> {
    pub n: u64,
    pub t: Time,
    pub node: NodeId,
    pub inc: u32,
    pub input: StepInput,
    pub out: Vec<&'a RawValue>,
    pub reply: Option<&'a RawValue>,
    pub panic: Option<Panic>,
    /// For each output, its parts if it is a `send` written as the writer writes one.
    pub sends: Vec<Option<RawSend<'a>>>,
}

/// The parts of a `send` output.
#[derive(Clone, Copy)]
pub struct RawSend<'a> {
    pub to: NodeId,
    pub msg: &'a RawValue,
    /// The network's message id, and whether it lost the message at once or will deliver it
    /// twice.
    pub id: Option<u64>,
    pub lost: bool,
    pub dup: bool,
}

/// A step line's fields with its payloads as text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStepLine<'a> {
    #[serde(rename = "type")]
    _type: serde::de::IgnoredAny,
    n: u64,
    t: Time,
    node: NodeId,
    inc: u32,
    input: StepInput,
    #[serde(borrow)]
    out: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    reply: Option<&'a RawValue>,
    #[serde(default)]
    panic: Option<Panic>,
}

/// A raw step with its texts as ranges of the line buffer (so the buffer is not borrowed
/// while the reader checks the step).
pub(super) struct StepParts {
    n: u64,
    t: Time,
    node: NodeId,
    inc: u32,
    input: StepInput,
    out: Vec<std::ops::Range<usize>>,
    reply: Option<std::ops::Range<usize>>,
    panic: Option<Panic>,
}

/// Where `raw` lies in the buffer that starts at address `base`.
fn span(raw: &RawValue, base: usize) -> std::ops::Range<usize> {
    let start = raw.get().as_ptr() as usize - base;
    start..start + raw.get().len()
}

fn slice(buf: &[u8], r: std::ops::Range<usize>) -> &RawValue {
    let text = std::str::from_utf8(&buf[r]).expect("a checked line");
    serde_json::from_str(text).expect("a value read before")
}

impl RawStepLine<'_> {
    pub(super) fn into_parts(self, base: usize) -> StepParts {
        StepParts {
            n: self.n,
            t: self.t,
            node: self.node,
            inc: self.inc,
            input: self.input,
            out: self.out.iter().map(|r| span(r, base)).collect(),
            reply: self.reply.map(|r| span(r, base)),
            panic: self.panic,
        }
    }
}

impl StepParts {
    pub(super) fn build(self, buf: &[u8], sends: Vec<Option<SendParts>>) -> RawStep<'_> {
        RawStep {
            n: self.n,
            t: self.t,
            node: self.node,
            inc: self.inc,
            input: self.input,
            out: self.out.into_iter().map(|r| slice(buf, r)).collect(),
            reply: self.reply.map(|r| slice(buf, r)),
            panic: self.panic,
            sends: sends
                .into_iter()
                .map(|s| {
                    s.map(|s| RawSend {
                        to: s.to,
                        msg: slice(buf, s.msg),
                        id: s.id,
                        lost: s.lost,
                        dup: s.dup,
                    })
                })
                .collect(),
        }
    }
}

/// A send's parts, its message as a range of the line buffer.
pub(super) struct SendParts {
    to: NodeId,
    msg: std::ops::Range<usize>,
    id: Option<u64>,
    lost: bool,
    dup: bool,
}

/// A `send` output as the writer writes it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SendOut<'a> {
    #[serde(borrow)]
    send: SendBody<'a>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody<'a> {
    to: NodeId,
    #[serde(borrow)]
    msg: &'a RawValue,
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    lost: Option<&'a RawValue>,
    #[serde(default)]
    dup: Option<bool>,
}

/// Outputs other than sends begin so (as the writer writes them).
const NOT_SENDS: [&str; 5] = [
    "{\"timer\":",
    "{\"cancel\":",
    "{\"persist\":",
    "{\"obs\":",
    "{\"mark\":",
];

/// What [`TraceReader::take_in`] checks of a step, on its text: references in force, the
/// delivered message in flight; and the step's sends go in flight (by id only).
pub(super) fn check_raw_step(
    line: &str,
    buf: &[u8],
    parts: &StepParts,
    blobs: &BlobTable,
    in_flight: &mut HashMap<u64, (Value, u32)>,
    format: u32,
) -> Result<Vec<Option<SendParts>>, String> {
    let text = |r: &std::ops::Range<usize>| std::str::from_utf8(&buf[r.clone()]).expect("UTF-8");
    if format >= 2 {
        if let StepInput::Deliver { id, msg, .. } = &parts.input {
            if msg.is_null() && arrive(in_flight, *id).is_none() {
                return Err(format!(
                    "message {id} is delivered here, but no send of it is in flight"
                ));
            }
        }
    }
    // The references of the input, the outputs and the reply, in one pass over the line (its
    // other fields are numbers, fixed words and a panic's text, which refer to nothing).
    blobs.check_text_refs(line)?;
    let base = buf.as_ptr() as usize;
    let mut sends = Vec::with_capacity(parts.out.len());
    for r in &parts.out {
        let o = text(r);
        let send = if o.starts_with("{\"send\":") {
            serde_json::from_str::<SendOut>(o).ok().map(|s| SendParts {
                to: s.send.to,
                msg: span(s.send.msg, base),
                id: s.send.id,
                lost: s.send.lost.is_some(),
                dup: s.send.dup == Some(true),
            })
        } else {
            None
        };
        match &send {
            Some(s) if format >= 2 => {
                if let (Some(id), false) = (s.id, s.lost) {
                    in_flight.insert(id, (Value::Null, if s.dup { 2 } else { 1 }));
                }
            }
            Some(_) => {}
            None if format >= 2 && !NOT_SENDS.iter().any(|p| o.starts_with(p)) => {
                let v: Value = serde_json::from_str(o).map_err(|e| e.to_string())?;
                track_send(in_flight, &v);
            }
            None => {}
        }
        sends.push(send);
    }
    Ok(sends)
}
