//! A trace turned into the compact view model the page draws: events per record, messages as
//! send → arrival pairs, role changes, marks, client operations, down periods and network
//! periods. Rows are JSON arrays (not objects) to keep a 100,000-event page small; the
//! layout of each row is documented on its field and mirrored in `viewer.js`.

use serde_json::{json, Value};
use sim::trace::{Record, StepInput, Trace, Verdict};
use sim::{Fault, Violation};
use std::collections::HashMap;

/// Event kinds (`ev` rows, third column).
pub const EV_START: u8 = 0;
pub const EV_DELIVER: u8 = 1;
pub const EV_TIMER: u8 = 2;
pub const EV_INPUT: u8 = 3;
pub const EV_DROP: u8 = 4;
pub const EV_FAULT: u8 = 5;
pub const EV_NOTE: u8 = 6;

/// Message fates (`msgs` rows, fifth column).
pub const FATE_DELIVERED: u8 = 0;
pub const FATE_LOST: u8 = 1;
pub const FATE_DROPPED: u8 = 2;
pub const FATE_IN_FLIGHT: u8 = 3;

/// Message flags (`msgs` rows, sixth column).
pub const FLAG_DUP: u8 = 1;
pub const FLAG_LONG: u8 = 2;

/// A message is "long-delayed" when its delay exceeds this many times the median delay.
pub const LONG_FACTOR: u64 = 10;

/// The view model, ready to serialize into the page.
#[derive(Default)]
pub struct Model {
    /// `[t, node (-1: global), kind, rec]`, in trace order.
    pub ev: Vec<Value>,
    /// `[from, to, t_send, t_end, fate, flags, kind, rec_send, rec_end, id]`, by send time.
    pub msgs: Vec<Value>,
    /// Message kinds (serde tags), indexed by the `kind` column of `msgs`.
    pub kinds: Vec<String>,
    /// Role changes `[node, t, role, term, rec]`.
    pub roles: Vec<Value>,
    /// Commits and applies `[node, t, "commit"|"applied", label, rec]`.
    pub marks: Vec<Value>,
    /// Client operations `[node, t_invoke, t_complete (-1: pending), rec_invoke, rec_complete
    /// (-1), label]`.
    pub ops: Vec<Value>,
    /// Other observations `[node, t, key, rec, output index]`.
    pub dots: Vec<Value>,
    /// Down periods of a node `[node, t0, t1, "crash"|"disconnect", rec0, rec1]`.
    pub down: Vec<Value>,
    /// Network periods `[t0, t1, label, "partition"|"cut", rec0, rec1]`.
    pub periods: Vec<Value>,
    /// The median delay of delivered messages, µs.
    pub median_delay: u64,
    /// The run's end (the result's end time, or the last event's time).
    pub end: u64,
    /// The violation with the index of its record, if any.
    pub violation: Option<Value>,
    /// A linearizability report found in the violation or a note (an object with `ops`).
    pub lin: Option<Value>,
}

/// The serde tag of a message or observation: the single key of an object, or the string.
pub fn tag(v: &Value) -> String {
    match v {
        Value::Object(m) if m.len() == 1 => m.keys().next().cloned().unwrap_or_default(),
        Value::Object(m) => m
            .get("type")
            .or_else(|| m.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_string(),
        Value::String(s) => s.clone(),
        _ => "message".to_string(),
    }
}

/// The one value under the single key of an object (`{"role":{..}}` → `{..}`).
pub fn inner(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.len() == 1 => m.values().next().unwrap_or(v),
        _ => v,
    }
}

/// A node's name, tolerant of ids outside the table.
pub fn node_name(names: &[String], id: usize) -> String {
    names.get(id).cloned().unwrap_or_else(|| format!("#{id}"))
}

/// `{s0,s1} {s2}` for partition groups.
pub fn groups_label(names: &[String], groups: &[Vec<usize>]) -> String {
    groups
        .iter()
        .map(|g| {
            let v: Vec<String> = g.iter().map(|&n| node_name(names, n)).collect();
            format!("{{{}}}", v.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A role observation: `{"role":{"role":"leader","term":5}}` → ("leader", 5).
pub fn role_of(obs: &Value) -> Option<(String, u64)> {
    let r = obs.get("role")?;
    let role = r.get("role")?.as_str()?.to_string();
    let term = r.get("term").and_then(Value::as_u64).unwrap_or(0);
    Some((role, term))
}

/// A compact one-line JSON text, cut at `max` characters.
pub fn short_json(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        _ => v.to_string(),
    };
    if s.chars().count() > max {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// The record number `n` of a record, if it has one.
pub fn record_n(r: &Record) -> Option<u64> {
    match r {
        Record::Step { n, .. }
        | Record::Drop { n, .. }
        | Record::Fault { n, .. }
        | Record::Note { n, .. }
        | Record::Disk { n, .. }
        | Record::Branch { n, .. } => Some(*n),
        _ => None,
    }
}

/// Checks what the model needs beyond the format: node ids within the header's table.
pub fn check(trace: &Trace) -> Result<(), String> {
    let nodes = trace.header().3.len();
    for (line, r) in &trace.records {
        check_record(nodes, *line, r)?;
    }
    Ok(())
}

/// [`check`] for one record (at `line`) of a trace with `nodes` nodes.
pub fn check_record(nodes: usize, line: usize, r: &Record) -> Result<(), String> {
    let ids: Vec<usize> = match r {
        Record::Step { node, input, .. } => match input {
            StepInput::Deliver { from, .. } => vec![*node, *from],
            _ => vec![*node],
        },
        Record::Drop { from, to, .. } => vec![*from, *to],
        Record::Fault { fault, .. } => fault.nodes(),
        Record::Disk { node, .. } => vec![*node],
        _ => vec![],
    };
    match ids.into_iter().find(|&id| id >= nodes) {
        Some(bad) => Err(format!(
            "line {line}: node {bad} does not exist (the header lists {nodes} nodes)"
        )),
        None => Ok(()),
    }
}

struct Send {
    from: usize,
    to: usize,
    t: u64,
    rec: usize,
    kind: usize,
    dup: bool,
    lost: bool,
    id: u64,
}

/// Builds the view model. Tolerant: records naming unknown nodes or messages are skipped.
pub fn build(trace: &Trace) -> Model {
    let nodes = trace.header().3;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let count = nodes.len();
    let mut m = Model::default();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    let mut sends: Vec<Send> = Vec::new();
    let mut send_index: HashMap<u64, usize> = HashMap::new();
    // arrivals per send: (t, rec, fate)
    let mut arrivals: HashMap<usize, Vec<(u64, usize, u8)>> = HashMap::new();
    let mut last_role: Vec<Option<(String, u64)>> = vec![None; count];
    let mut open_ops: Vec<Vec<(Value, Value)>> = vec![Vec::new(); count];
    let mut crashed: Vec<Option<(u64, usize)>> = vec![None; count];
    let mut disconnected: Vec<Option<(u64, usize)>> = vec![None; count];
    let mut partition: Option<(u64, String, usize)> = None;
    let mut cuts: Vec<(u64, String, usize)> = Vec::new();
    let mut last_t = 0;
    let mut end = None;
    let mut violation: Option<Violation> = None;
    let mut n_to_rec: HashMap<u64, usize> = HashMap::new();

    for (rec, (_, r)) in trace.records.iter().enumerate() {
        if let Some(n) = record_n(r) {
            n_to_rec.insert(n, rec);
        }
        match r {
            Record::Header { .. } => {}
            Record::Step {
                t,
                node,
                input,
                out,
                ..
            } => {
                let (t, node) = (*t, *node);
                last_t = last_t.max(t);
                if node >= count {
                    continue;
                }
                let kind = match input {
                    StepInput::Start => EV_START,
                    StepInput::Deliver { id, .. } => {
                        if let Some(&s) = send_index.get(id) {
                            arrivals
                                .entry(s)
                                .or_default()
                                .push((t, rec, FATE_DELIVERED));
                        }
                        EV_DELIVER
                    }
                    StepInput::Timer { .. } => EV_TIMER,
                    StepInput::Input { .. } => EV_INPUT,
                };
                m.ev.push(json!([t, node, kind, rec]));
                for (oi, o) in out.iter().enumerate() {
                    if let Some(s) = o.get("send") {
                        let to = s.get("to").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
                        let Some(id) = s.get("id").and_then(Value::as_u64) else {
                            continue;
                        };
                        if to >= count {
                            continue;
                        }
                        let name = s.get("msg").map(tag).unwrap_or_else(|| "message".into());
                        let next = kinds.len();
                        let kind = *kinds.entry(name.clone()).or_insert(next);
                        if kind == next {
                            m.kinds.push(name);
                        }
                        send_index.insert(id, sends.len());
                        sends.push(Send {
                            from: node,
                            to,
                            t,
                            rec,
                            kind,
                            dup: s.get("dup").and_then(Value::as_bool).unwrap_or(false),
                            lost: s.get("lost").is_some_and(|l| !l.is_null()),
                            id,
                        });
                    } else if let Some(obs) = o.get("obs") {
                        observe(&mut m, &mut last_role, &mut open_ops, node, t, rec, oi, obs);
                    }
                }
            }
            Record::Drop { t, to, id, .. } => {
                last_t = last_t.max(*t);
                if let Some(&s) = send_index.get(id) {
                    arrivals.entry(s).or_default().push((*t, rec, FATE_DROPPED));
                }
                m.ev.push(json!([t, to, EV_DROP, rec]));
            }
            Record::Fault { t, fault, noop, .. } => {
                let t = *t;
                last_t = last_t.max(t);
                let lane: i64 = match fault {
                    Fault::Crash(n)
                    | Fault::Restart(n)
                    | Fault::Disconnect(n)
                    | Fault::Reconnect(n)
                    | Fault::Corrupt(n)
                    | Fault::LoseDisk(n) => *n as i64,
                    _ => -1,
                };
                m.ev.push(json!([t, lane, EV_FAULT, rec]));
                if *noop {
                    continue;
                }
                match fault {
                    Fault::Crash(n) | Fault::LoseDisk(n) if *n < count => {
                        crashed[*n].get_or_insert((t, rec));
                        // a crashed node's role is gone; the next role obs starts afresh
                        last_role[*n] = None;
                    }
                    Fault::Restart(n) if *n < count => {
                        if let Some((t0, r0)) = crashed[*n].take() {
                            m.down.push(json!([n, t0, t, "crash", r0, rec]));
                        }
                    }
                    Fault::Disconnect(n) if *n < count => {
                        disconnected[*n].get_or_insert((t, rec));
                    }
                    Fault::Reconnect(n) if *n < count => {
                        if let Some((t0, r0)) = disconnected[*n].take() {
                            m.down.push(json!([n, t0, t, "disconnect", r0, rec]));
                        }
                    }
                    Fault::Partition(groups) => {
                        if let Some((t0, label, r0)) = partition.take() {
                            m.periods.push(json!([t0, t, label, "partition", r0, rec]));
                        }
                        let label = format!("partition {}", groups_label(&names, groups));
                        partition = Some((t, label, rec));
                    }
                    Fault::Cut { from, to } => {
                        let label = format!(
                            "cut {} → {}",
                            node_name(&names, *from),
                            node_name(&names, *to)
                        );
                        cuts.push((t, label, rec));
                    }
                    Fault::Heal => {
                        if let Some((t0, label, r0)) = partition.take() {
                            m.periods.push(json!([t0, t, label, "partition", r0, rec]));
                        }
                        for (t0, label, r0) in cuts.drain(..) {
                            m.periods.push(json!([t0, t, label, "cut", r0, rec]));
                        }
                    }
                    _ => {}
                }
            }
            Record::Note { t, text, .. } => {
                last_t = last_t.max(*t);
                m.ev.push(json!([t, -1, EV_NOTE, rec]));
                if m.lin.is_none() {
                    m.lin = find_report_in_text(text);
                }
            }
            Record::Branch { t, .. } => {
                last_t = last_t.max(*t);
                m.ev.push(json!([t, -1, EV_NOTE, rec]));
            }
            Record::Disk { t, node, .. } => {
                last_t = last_t.max(*t);
                m.ev.push(json!([t, node, EV_NOTE, rec]));
            }
            Record::Result {
                end_time,
                violation: v,
                verdict,
                ..
            } => {
                end = Some(*end_time);
                if *verdict == Verdict::Violation {
                    violation = v.clone();
                }
            }
        }
    }
    let end = end.unwrap_or(last_t).max(last_t);
    m.end = end;

    // Close what is still open at the end.
    for (n, c) in crashed.iter().enumerate() {
        if let Some((t0, r0)) = c {
            m.down.push(json!([n, t0, end, "crash", r0, -1]));
        }
    }
    for (n, c) in disconnected.iter().enumerate() {
        if let Some((t0, r0)) = c {
            m.down.push(json!([n, t0, end, "disconnect", r0, -1]));
        }
    }
    if let Some((t0, label, r0)) = partition {
        m.periods.push(json!([t0, end, label, "partition", r0, -1]));
    }
    for (t0, label, r0) in cuts {
        m.periods.push(json!([t0, end, label, "cut", r0, -1]));
    }
    for (_, row) in open_ops.into_iter().flatten() {
        m.ops.push(row);
    }

    // Messages: one row per arrival (a duplicate has two), by send time.
    let mut delays: Vec<u64> = arrivals
        .iter()
        .flat_map(|(s, a)| {
            let t0 = sends[*s].t;
            a.iter()
                .filter(|x| x.2 == FATE_DELIVERED)
                .map(move |x| x.0.saturating_sub(t0))
        })
        .collect();
    delays.sort_unstable();
    m.median_delay = delays.get(delays.len() / 2).copied().unwrap_or(0);
    let long = m.median_delay.max(1) * LONG_FACTOR;
    for (i, s) in sends.iter().enumerate() {
        let dup = if s.dup { FLAG_DUP } else { 0 };
        let row = |t_end: u64, fate: u8, rec_end: i64, flags: u8| {
            json!([s.from, s.to, s.t, t_end, fate, flags, s.kind, s.rec, rec_end, s.id])
        };
        match arrivals.get(&i) {
            _ if s.lost => m
                .msgs
                .push(row(s.t + m.median_delay / 2, FATE_LOST, -1, dup)),
            None => m.msgs.push(row(end.max(s.t), FATE_IN_FLIGHT, -1, dup)),
            Some(list) => {
                let dup = if list.len() > 1 { FLAG_DUP } else { dup };
                for &(t, rec, fate) in list {
                    let flags = dup
                        | if t.saturating_sub(s.t) > long {
                            FLAG_LONG
                        } else {
                            0
                        };
                    m.msgs.push(row(t, fate, rec as i64, flags));
                }
            }
        }
    }

    if let Some(v) = violation {
        let rec = n_to_rec.get(&v.event).map(|&r| r as i64).unwrap_or(-1);
        if m.lin.is_none() && v.failure.property.to_lowercase().starts_with("linearizab") {
            m.lin = find_report_in_text(&v.failure.detail);
        }
        m.violation = Some(json!({
            "property": v.failure.property,
            "nodes": v.failure.nodes,
            "names": v.failure.nodes.iter().map(|&n| node_name(&names, n)).collect::<Vec<_>>(),
            "detail": v.failure.detail,
            "time": v.time,
            "event": v.event,
            "rec": rec,
        }));
    }
    m
}

/// Handles one observation of `node`.
#[allow(clippy::too_many_arguments)]
fn observe(
    m: &mut Model,
    last_role: &mut [Option<(String, u64)>],
    open_ops: &mut [Vec<(Value, Value)>],
    node: usize,
    t: u64,
    rec: usize,
    oi: usize,
    obs: &Value,
) {
    let key = tag(obs);
    if let Some((role, term)) = role_of(obs) {
        let now = Some((role.clone(), term));
        if last_role[node] != now {
            m.roles.push(json!([node, t, role, term, rec]));
            last_role[node] = now;
        }
        return;
    }
    let body = inner(obs);
    match key.as_str() {
        "commit" => {
            let idx = body.get("commit_index").map(|v| short_json(v, 20));
            let label = format!("commit {}", idx.unwrap_or_default());
            m.marks.push(json!([node, t, "commit", label, rec]));
        }
        "applied" => {
            let idx = body.get("index").map(|v| short_json(v, 20));
            let label = format!("applied {}", idx.unwrap_or_default());
            m.marks.push(json!([node, t, "applied", label, rec]));
        }
        "invoke" => {
            let op = body.get("op").unwrap_or(body);
            let label = short_json(op, 60);
            open_ops[node].push((op.clone(), json!([node, t, -1, rec, -1, label])));
        }
        "complete" => {
            let op = body.get("op").unwrap_or(body);
            let open = &mut open_ops[node];
            // the oldest open invocation of the same op, else the oldest one
            let pos = open
                .iter()
                .position(|(o, _)| o == op)
                .or(if open.is_empty() { None } else { Some(0) });
            let mut label = short_json(op, 60);
            if let Some(res) = body.get("result") {
                label = format!("{label} → {}", short_json(res, 40));
            }
            match pos {
                Some(p) => {
                    let (_, row) = open.remove(p);
                    m.ops.push(json!([node, row[1], t, row[3], rec, label]));
                }
                None => m.ops.push(json!([node, t, t, -1, rec, label])),
            }
        }
        _ => m.dots.push(json!([node, t, key, rec, oi])),
    }
}

/// A JSON object with an `ops` array somewhere inside `text` (a linearizability report).
pub fn find_report_in_text(text: &str) -> Option<Value> {
    for (i, _) in text.match_indices('{') {
        let mut de = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        if let Some(Ok(v)) = de.next() {
            if let Some(r) = find_report(&v, 0) {
                return Some(r.clone());
            }
        }
    }
    None
}

fn find_report(v: &Value, depth: usize) -> Option<&Value> {
    if depth > 5 {
        return None;
    }
    match v {
        Value::Object(map) => {
            if map.get("ops").is_some_and(Value::is_array) {
                return Some(v);
            }
            map.values().find_map(|x| find_report(x, depth + 1))
        }
        Value::Array(a) => a.iter().find_map(|x| find_report(x, depth + 1)),
        _ => None,
    }
}
