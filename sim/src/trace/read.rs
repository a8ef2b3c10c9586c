//! Reading traces as streams: one line at a time from any [`BufRead`], in memory bounded by
//! the blobs the writer keeps ([`super::cache::BUDGET`]) and the messages in flight, never by
//! the trace's length.
//!
//! [`TraceReader`] yields the records of a trace of format 1 or 2 in order. `blob` and
//! `forget` lines are taken in on the way and not yielded; a delivery, which format 2 writes
//! without its message, gets the message from the `send` that carried it (by message id).
//! Payloads keep their `{"$ref":ID}` references: [`TraceReader::resolve`] expands one, and
//! [`TraceReader::decode`] reads one into the node's types. A record's references are good
//! until the next record is read (a later `forget` line may drop their blobs).

mod raw;

use super::decode::decode;
use super::table::{ref_id, BlobTable};
use super::{NodeSpec, Record, StepInput, Verdict, FORMAT_VERSION, OLDEST_FORMAT};
use crate::checker::{Undecided, Violation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;

/// A trace being read.
pub struct TraceReader<R> {
    input: R,
    buf: Vec<u8>,
    line: usize,
    format: u32,
    header: Record,
    header_line: usize,
    header_given: bool,
    blobs: BlobTable,
    /// Messages sent and not yet delivered or dropped (format 2): id → (message, copies left).
    // Keyed by message id, looked up and removed, never iterated (the reader is outside the
    // simulated world, and its output does not depend on hash order).
    in_flight: HashMap<u64, (Value, u32)>,
    result: Option<Record>,
    last_line: usize,
    records: usize,
}

use raw::{check_raw_step, RawStepLine};
pub use raw::{RawRecord, RawSend, RawStep};

enum Line {
    Record(Box<Record>),
    Blob(Value),
    Forget(Value),
}

impl<R: BufRead> TraceReader<R> {
    /// Starts reading: the first record must be a header of a format this build reads. The
    /// error names the line and the problem.
    pub fn new(input: R) -> Result<Self, String> {
        let mut reader = TraceReader {
            input,
            buf: Vec::new(),
            line: 0,
            format: 0,
            header: Record::Note {
                n: 0,
                t: 0,
                text: String::new(),
            },
            header_line: 0,
            header_given: false,
            blobs: BlobTable::default(),
            in_flight: HashMap::new(),
            result: None,
            last_line: 0,
            records: 0,
        };
        match reader.read_line() {
            Ok(Some(Line::Record(h))) if matches!(*h, Record::Header { .. }) => {
                let h = *h;
                let Record::Header { format, .. } = h else {
                    unreachable!()
                };
                if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
                    return Err(format!(
                        "line {}: trace format {format} is not supported (this build reads {OLDEST_FORMAT} to {FORMAT_VERSION})",
                        reader.line
                    ));
                }
                reader.format = format;
                reader.header = h;
                reader.header_line = reader.line;
                reader.last_line = reader.line;
                Ok(reader)
            }
            Ok(_) => Err(format!(
                "line {}: a trace must start with a header record",
                reader.line.max(1)
            )),
            Err(e) => Err(e),
        }
    }

    /// The trace's format version.
    pub fn format(&self) -> u32 {
        self.format
    }

    /// The header fields: seed, scenario, source, nodes.
    pub fn header(&self) -> (u64, &Value, &str, &[NodeSpec]) {
        match &self.header {
            Record::Header {
                seed,
                scenario,
                source,
                nodes,
                ..
            } => (*seed, scenario, source, nodes),
            _ => unreachable!("checked by new"),
        }
    }

    /// The header record itself.
    pub fn header_record(&self) -> &Record {
        &self.header
    }

    /// The blobs in force (for resolving references by hand).
    pub fn blobs(&self) -> &BlobTable {
        &self.blobs
    }

    /// How many messages are in flight (kept for the deliveries still to come).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// `v` with its references expanded (byte strings as arrays of numbers, as in format 1).
    pub fn resolve(&self, v: &Value) -> Value {
        self.blobs.resolve(v)
    }

    /// `v` with its references expanded, long strings and byte strings cut (for people).
    pub fn resolve_brief(&self, v: &Value, max: usize) -> Value {
        self.blobs.resolve_with(v, max)
    }

    /// Reads a payload into the node's types.
    pub fn decode<T: DeserializeOwned>(&self, v: &Value) -> Result<T, String> {
        decode(v, &self.blobs)
    }

    /// The record with every payload expanded ([`TraceReader::resolve`]).
    pub fn resolve_record(&self, mut r: Record) -> Record {
        if let Record::Step {
            input, out, reply, ..
        } = &mut r
        {
            match input {
                StepInput::Deliver { msg, .. } => *msg = self.resolve(msg),
                StepInput::Input { input } => *input = self.resolve(input),
                _ => {}
            }
            for o in out.iter_mut() {
                *o = self.resolve(o);
            }
            if let Some(x) = reply {
                *x = self.resolve(x);
            }
        }
        r
    }

    /// The result record's verdict and violation, once read (None for a truncated trace).
    pub fn result(&self) -> Option<(&Verdict, Option<&Violation>)> {
        match &self.result {
            Some(Record::Result {
                verdict, violation, ..
            }) => Some((verdict, violation.as_ref())),
            _ => None,
        }
    }

    /// The checks the result record lists as undecided (empty without a result record).
    pub fn undecided(&self) -> &[Undecided] {
        match &self.result {
            Some(Record::Result { unknown, .. }) => unknown,
            _ => &[],
        }
    }

    /// Line number of the last record read.
    pub fn last_line(&self) -> usize {
        self.last_line
    }

    /// How many records were yielded so far (the header is the first).
    pub fn records(&self) -> usize {
        self.records
    }

    /// The next record with its line number; None at the end.
    pub fn next_record(&mut self) -> Option<Result<(usize, Record), String>> {
        if !self.header_given {
            self.header_given = true;
            self.records += 1;
            return Some(Ok((self.header_line, self.header.clone())));
        }
        loop {
            let range = match self.next_line() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let at = self.line;
            let text = std::str::from_utf8(&self.buf[range]).expect("checked by next_line");
            if text.starts_with("{\"type\":\"blob\"") {
                match self.blobs.define_text(text) {
                    Ok(()) => continue,
                    Err(e) => return Some(Err(format!("line {at}: {e}"))),
                }
            }
            let line = match parse_line(text) {
                Ok(l) => l,
                Err(e) => return Some(Err(format!("line {at}: {e}"))),
            };
            match self.take_line(line, at) {
                Err(e) => return Some(Err(e)),
                Ok(None) => continue,
                Ok(Some(r)) => return Some(Ok((at, r))),
            }
        }
    }

    /// The next record with its line number and the blobs in force, a step's payloads left as
    /// text ([`RawStep`]): for replay, which compares them as text. Messages in flight are
    /// tracked by id only. None at the end.
    pub fn next_raw(&mut self) -> Option<Result<(usize, RawRecord<'_>, &BlobTable), String>> {
        if !self.header_given {
            self.header_given = true;
            self.records += 1;
            let h = RawRecord::Other(self.header.clone());
            return Some(Ok((self.header_line, h, &self.blobs)));
        }
        loop {
            let range = match self.next_line() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let at = self.line;
            let text = std::str::from_utf8(&self.buf[range.clone()]).expect("checked by next_line");
            if text.starts_with("{\"type\":\"blob\"") {
                match self.blobs.define_text(text) {
                    Ok(()) => continue,
                    Err(e) => return Some(Err(format!("line {at}: {e}"))),
                }
            }
            if text.starts_with("{\"type\":\"step\",") {
                let base = self.buf.as_ptr() as usize;
                let parts = serde_json::from_str::<RawStepLine>(text)
                    .ok()
                    .map(|l| l.into_parts(base));
                if let Some(parts) = parts {
                    let sends = match check_raw_step(
                        text,
                        &self.buf,
                        &parts,
                        &self.blobs,
                        &mut self.in_flight,
                        self.format,
                    ) {
                        Ok(s) => s,
                        Err(e) => return Some(Err(format!("line {at}: {e}"))),
                    };
                    self.last_line = at;
                    self.records += 1;
                    let step = parts.build(&self.buf, sends);
                    return Some(Ok((at, RawRecord::Step(step), &self.blobs)));
                }
            }
            let line = match parse_line(text) {
                Ok(l) => l,
                Err(e) => return Some(Err(format!("line {at}: {e}"))),
            };
            match self.take_line(line, at) {
                Err(e) => return Some(Err(e)),
                Ok(None) => continue,
                Ok(Some(r)) => return Some(Ok((at, RawRecord::Other(r), &self.blobs))),
            }
        }
    }

    /// One parsed line at line `at`: a blob or forget record updates the blob cache (`None`);
    /// a record is resolved and counted (the result record is kept for `result()`).
    fn take_line(&mut self, line: Line, at: usize) -> Result<Option<Record>, String> {
        let done = match line {
            Line::Blob(v) => self.blobs.define(&v).map(|_| None),
            Line::Forget(v) => self.blobs.forget(&v).map(|_| None),
            Line::Record(r) => self.take_in(*r).map(Some),
        };
        let r = done.map_err(|e| format!("line {at}: {e}"))?;
        if let Some(r) = &r {
            self.last_line = at;
            self.records += 1;
            if matches!(r, Record::Result { .. }) {
                self.result = Some(r.clone());
            }
        }
        Ok(r)
    }

    /// Checks a record's references and tracks its messages (format 2).
    fn take_in(&mut self, mut r: Record) -> Result<Record, String> {
        match &mut r {
            Record::Header { .. } => return Err("a second header record".into()),
            Record::Step {
                input, out, reply, ..
            } => {
                if self.format >= 2 {
                    if let StepInput::Deliver { id, msg, .. } = input {
                        if msg.is_null() {
                            *msg = self.arrive(*id).ok_or_else(|| {
                                format!("message {id} is delivered here, but no send of it is in flight")
                            })?;
                        }
                    }
                }
                match input {
                    StepInput::Deliver { msg: v, .. } | StepInput::Input { input: v } => {
                        self.blobs.check_refs(v)?
                    }
                    _ => {}
                }
                for o in out.iter() {
                    self.blobs.check_refs(o)?;
                }
                if let Some(x) = reply {
                    self.blobs.check_refs(x)?;
                }
                if self.format >= 2 {
                    for o in out.iter() {
                        track_send(&mut self.in_flight, o);
                    }
                }
            }
            Record::Drop { id, .. } => {
                self.arrive(*id);
            }
            _ => {}
        }
        Ok(r)
    }

    /// One copy of message `id` arrives (or is dropped): its message.
    fn arrive(&mut self, id: u64) -> Option<Value> {
        arrive(&mut self.in_flight, id)
    }

    /// The next non-empty line, parsed.
    fn read_line(&mut self) -> Result<Option<Line>, String> {
        let Some(range) = self.next_line()? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&self.buf[range]).expect("checked by next_line");
        parse_line(text)
            .map(Some)
            .map_err(|e| format!("line {}: {e}", self.line))
    }

    /// Reads the next non-empty line into the buffer: where its text (UTF-8, without the line
    /// end) lies.
    fn next_line(&mut self) -> Result<Option<std::ops::Range<usize>>, String> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| format!("line {}: cannot read: {e}", self.line + 1))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let mut bytes = &self.buf[..];
            while let [rest @ .., b'\n' | b'\r'] = bytes {
                bytes = rest;
            }
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("line {}: not valid UTF-8", self.line))?;
            if text.trim().is_empty() {
                continue;
            }
            return Ok(Some(0..bytes.len()));
        }
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<(usize, Record), String>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

fn parse_line(text: &str) -> Result<Line, String> {
    // The writer puts `type` first; any other layout is read through a `Value`.
    if text.starts_with("{\"type\":\"blob\"") || text.starts_with("{\"type\":\"forget\"") {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return Ok(blob_or_forget(v).expect("the type was checked"));
    }
    // Steps are nearly every line: read them straight into their fields (the tagged enum
    // would buffer the whole line first). Any problem is reported by the general path.
    if text.starts_with("{\"type\":\"step\",") {
        if let Ok(s) = serde_json::from_str::<StepLine>(text) {
            return Ok(Line::Record(Box::new(Record::Step {
                n: s.n,
                t: s.t,
                node: s.node,
                inc: s.inc,
                input: s.input,
                out: s.out,
                reply: s.reply,
                panic: s.panic,
            })));
        }
    }
    match serde_json::from_str::<Record>(text) {
        Ok(r) => Ok(Line::Record(Box::new(r))),
        Err(e) => match serde_json::from_str::<Value>(text)
            .ok()
            .and_then(blob_or_forget)
        {
            Some(l) => Ok(l),
            None => Err(e.to_string()),
        },
    }
}

/// Puts the message of a send output (parsed) in flight, if it is one.
pub(super) fn track_send(in_flight: &mut HashMap<u64, (Value, u32)>, o: &Value) {
    let Some(s) = o.get("send") else { return };
    let lost = s.get("lost").is_some_and(|l| !l.is_null());
    let (Some(id), Some(msg), false) = (s.get("id").and_then(Value::as_u64), s.get("msg"), lost)
    else {
        return;
    };
    let copies = if s.get("dup") == Some(&Value::Bool(true)) {
        2
    } else {
        1
    };
    in_flight.insert(id, (msg.clone(), copies));
}

/// One copy of message `id` arrives (or is dropped): its message.
pub(super) fn arrive(in_flight: &mut HashMap<u64, (Value, u32)>, id: u64) -> Option<Value> {
    let (msg, copies) = in_flight.get_mut(&id)?;
    *copies -= 1;
    if *copies == 0 {
        return in_flight.remove(&id).map(|(m, _)| m);
    }
    Some(msg.clone())
}

/// A step line's fields, as [`Record::Step`] has them (`type` is checked by the caller).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StepLine {
    #[serde(rename = "type")]
    _type: serde::de::IgnoredAny,
    n: u64,
    t: crate::node::Time,
    node: crate::node::NodeId,
    inc: u32,
    input: StepInput,
    out: Vec<Value>,
    #[serde(default)]
    reply: Option<Value>,
    #[serde(default)]
    panic: Option<crate::panics::Panic>,
}

fn blob_or_forget(v: Value) -> Option<Line> {
    match v.get("type").and_then(Value::as_str) {
        Some("blob") => Some(Line::Blob(v)),
        Some("forget") => Some(Line::Forget(v)),
        _ => None,
    }
}

/// True if `v` is a reference `{"$ref":ID}`.
pub fn is_ref(v: &Value) -> bool {
    ref_id(v).is_some()
}
