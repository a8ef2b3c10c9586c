//! The text timeline: one aligned line per interesting event (faults, role changes, commits,
//! client operations, notes, the violation), a header and a verdict line. Deterministic: the
//! same trace gives the same text, so it can be snapshot-tested.

use super::model::{groups_label, inner, node_name, role_of, short_json, tag};
use serde_json::Value;
use sim::trace::{Record, Trace, Verdict};
use sim::{Fault, Violation};

/// `1.234567` seconds as `1.234s` (ms precision, like the rest of `sim`'s output).
fn secs(t: u64) -> String {
    sim::fmt_time(t)
}

struct Line {
    t: u64,
    n: Option<u64>,
    /// The largest event number of the records read up to this line's: the violation's line
    /// goes before the first line past its event.
    upto: u64,
    node: String,
    what: String,
}

/// The timeline of `trace`, lines cut at `width` characters (0: no limit).
pub fn text_timeline(trace: &Trace, width: usize) -> String {
    let mut tl = Timeline::new(&trace.records[0].1);
    for (_, r) in &trace.records[1..] {
        tl.push(r);
    }
    tl.finish(width)
}

/// A text timeline built one record at a time (for traces read as streams).
pub struct Timeline {
    seed: u64,
    name: String,
    source: String,
    nodes: Vec<sim::NodeSpec>,
    names: Vec<String>,
    lines: Vec<Line>,
    last_role: Vec<Option<(String, u64)>>,
    upto: u64,
    result: Option<Record>,
}

impl Timeline {
    /// A timeline for the trace with this header record.
    pub fn new(header: &Record) -> Self {
        let (seed, name, source, nodes) = match header {
            Record::Header {
                seed,
                scenario,
                source,
                nodes,
                ..
            } => (
                *seed,
                scenario.get("name").and_then(Value::as_str).unwrap_or("?"),
                source.as_str(),
                nodes.clone(),
            ),
            _ => (0, "?", "?", Vec::new()),
        };
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        Timeline {
            seed,
            name: name.to_string(),
            source: source.to_string(),
            last_role: vec![None; names.len()],
            nodes,
            names,
            lines: Vec::new(),
            upto: 0,
            result: None,
        }
    }

    fn line(&mut self, t: u64, n: u64, node: String, what: String) {
        self.lines.push(Line {
            t,
            n: Some(n),
            upto: self.upto,
            node,
            what,
        });
    }

    /// Takes in the next record (payloads expanded).
    pub fn push(&mut self, r: &Record) {
        if let Some(n) = super::model::record_n(r) {
            self.upto = self.upto.max(n);
        }
        match r {
            Record::Step {
                n, t, node, out, ..
            } => {
                for o in out {
                    let Some(obs) = o.get("obs") else { continue };
                    let what = if let Some((role, term)) = role_of(obs) {
                        let now = Some((role.clone(), term));
                        match self.last_role.get_mut(*node) {
                            Some(last) if *last != now => {
                                *last = now;
                                format!("{role} term {term}")
                            }
                            _ => continue,
                        }
                    } else {
                        match describe_obs(obs) {
                            Some(w) => w,
                            None => continue,
                        }
                    };
                    let name = node_name(&self.names, *node);
                    self.line(*t, *n, name, what);
                }
            }
            Record::Fault {
                n, t, fault, noop, ..
            } => {
                if let Fault::Crash(id) = fault {
                    if let Some(last) = self.last_role.get_mut(*id) {
                        *last = None;
                    }
                }
                let (node, mut what) = describe_fault(&self.names, fault);
                if *noop {
                    what.push_str(" (no-op)");
                }
                self.line(*t, *n, node, what);
            }
            Record::Note { n, t, text } => {
                let what = format!("note: {}", text.replace('\n', " "));
                self.line(*t, *n, "-".into(), what);
            }
            Record::Branch { n, t, seed } => {
                let what = format!("branch: every random stream from seed {seed} on");
                self.line(*t, *n, "-".into(), what);
            }
            Record::Result { .. } => self.result = Some(r.clone()),
            _ => {}
        }
    }

    /// The timeline, lines cut at `width` characters (0: no limit).
    pub fn finish(mut self, width: usize) -> String {
        let names = &self.names;
        let (verdict, violation, unknown): (
            Option<Verdict>,
            Option<&Violation>,
            &[sim::Undecided],
        ) = match &self.result {
            Some(Record::Result {
                verdict,
                violation,
                unknown,
                ..
            }) => (Some(*verdict), violation.as_ref(), unknown),
            _ => (None, None, &[]),
        };
        if let Some(v) = violation {
            let at = self
                .lines
                .iter()
                .position(|l| l.upto > v.event)
                .unwrap_or(self.lines.len());
            let line = Line {
                t: v.time,
                n: Some(v.event),
                upto: v.event,
                node: v
                    .failure
                    .nodes
                    .first()
                    .map(|&n| node_name(names, n))
                    .unwrap_or_else(|| "-".into()),
                what: format!(
                    "VIOLATION {}: {} (nodes {})",
                    v.failure.property,
                    v.failure.detail,
                    node_list(names, &v.failure.nodes)
                ),
            };
            self.lines.insert(at, line);
        }
        let lines = &self.lines;
        let nodes = &self.nodes;
        let (seed, name, source) = (self.seed, &self.name, &self.source);
        let mut out = String::new();
        let clients = nodes.iter().filter(|n| n.client).count();
        out.push_str(&cut(
            &format!("trace     {name} ({source}), seed {seed}"),
            width,
        ));
        out.push_str(&cut(
            &format!(
                "nodes     {} ({} servers, {} clients)",
                names.join(" "),
                nodes.len() - clients,
                clients
            ),
            width,
        ));
        let tw = lines
            .iter()
            .map(|l| secs(l.t).len())
            .max()
            .unwrap_or(6)
            .max(4);
        let nw = lines
            .iter()
            .map(|l| l.n.map_or(1, |n| n.to_string().len() + 2))
            .max()
            .unwrap_or(1)
            .max(5);
        let namew = lines.iter().map(|l| l.node.len()).max().unwrap_or(1).max(4);
        out.push_str(&cut(
            &format!(
                "  {:>tw$}  {:<nw$}  {:<namew$}  what",
                "time", "event", "node"
            ),
            width,
        ));
        for l in lines {
            let n = l.n.map_or("-".to_string(), |n| format!("n={n}"));
            let line = format!(
                "  {:>tw$}  {:<nw$}  {:<namew$}  {}",
                secs(l.t),
                n,
                l.node,
                l.what
            );
            out.push_str(&cut(&line, width));
        }
        let verdict = match (verdict, violation) {
            (None, _) => {
                "verdict   TRUNCATED: the trace has no result record (the run did not finish)"
                    .into()
            }
            (Some(Verdict::Ok), _) => "verdict   ok: all checks held".to_string(),
            (Some(Verdict::Violation), Some(v)) => format!(
                "verdict   VIOLATION: {} at {} (event {})",
                v.failure.property,
                secs(v.time),
                v.event
            ),
            (Some(Verdict::Violation), None) => "verdict   VIOLATION".to_string(),
            (Some(Verdict::Unknown), _) => {
                let checks: Vec<&str> = unknown.iter().map(|u| u.check.as_str()).collect();
                format!("verdict   UNKNOWN: {} undecided", checks.join(", "))
            }
        };
        out.push_str(&cut(&verdict, width));
        out
    }
}

fn cut(line: &str, width: usize) -> String {
    let line = line.trim_end();
    if width > 0 && line.chars().count() > width {
        let s: String = line.chars().take(width.saturating_sub(1)).collect();
        format!("{s}…\n")
    } else {
        format!("{line}\n")
    }
}

fn node_list(names: &[String], ids: &[usize]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(|&n| node_name(names, n))
        .collect::<Vec<_>>()
        .join(",")
}

/// Commits, applies are left out (one per entry per node is too many), client operations.
fn describe_obs(obs: &Value) -> Option<String> {
    let body = inner(obs);
    match tag(obs).as_str() {
        "commit" => Some(format!(
            "commit {}",
            body.get("commit_index")
                .map(|v| short_json(v, 20))
                .unwrap_or_default()
        )),
        "invoke" => Some(format!(
            "invoke {}",
            short_json(body.get("op").unwrap_or(body), 80)
        )),
        "complete" => {
            let mut s = format!(
                "complete {}",
                short_json(body.get("op").unwrap_or(body), 80)
            );
            if let Some(r) = body.get("result") {
                s.push_str(&format!(" -> {}", short_json(r, 60)));
            }
            Some(s)
        }
        _ => None,
    }
}

fn describe_fault(names: &[String], f: &Fault) -> (String, String) {
    let name = |n: &usize| node_name(names, *n);
    match f {
        Fault::Crash(n) => (name(n), "crash".into()),
        Fault::Restart(n) => (name(n), "restart".into()),
        Fault::Disconnect(n) => (name(n), "disconnect".into()),
        Fault::Reconnect(n) => (name(n), "reconnect".into()),
        Fault::Partition(g) => ("-".into(), format!("partition {}", groups_label(names, g))),
        Fault::Cut { from, to } => ("-".into(), format!("cut {} -> {}", name(from), name(to))),
        Fault::Heal => ("-".into(), "heal".into()),
        Fault::Hold {
            node,
            for_ms,
            release_on,
            same_node,
            ..
        } => (
            name(node),
            format!(
                "hold messages for {for_ms} ms, until a {release_on:?} mark{}",
                if *same_node { " of this node" } else { "" }
            ),
        ),
        Fault::Release => ("-".into(), "release held messages".into()),
        Fault::ClockJump { node, by_ms } => (name(node), format!("clock jumps {by_ms:+} ms")),
        Fault::ClockDrift { node, drift_ppm } => {
            (name(node), format!("clock drift {drift_ppm:+} ppm"))
        }
        Fault::Network(cfg) => (
            "-".into(),
            format!(
                "network {}",
                serde_json::to_value(cfg)
                    .map(|v| short_json(&v, 100))
                    .unwrap_or_default()
            ),
        ),
    }
}
