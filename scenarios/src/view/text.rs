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
    node: String,
    what: String,
}

/// The timeline of `trace`, lines cut at `width` characters (0: no limit).
pub fn text_timeline(trace: &Trace, width: usize) -> String {
    let (seed, scenario, source, nodes) = trace.header();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut lines: Vec<Line> = Vec::new();
    let mut last_role: Vec<Option<(String, u64)>> = vec![None; names.len()];
    let violation: Option<&Violation> = trace.result().and_then(|(_, v)| v);
    let mut violation_done = false;
    let violation_line = |v: &Violation| Line {
        t: v.time,
        n: Some(v.event),
        node: v
            .failure
            .nodes
            .first()
            .map(|&n| node_name(&names, n))
            .unwrap_or_else(|| "-".into()),
        what: format!(
            "VIOLATION {}: {} (nodes {})",
            v.failure.property,
            v.failure.detail,
            node_list(&names, &v.failure.nodes)
        ),
    };

    for (_, r) in &trace.records {
        if let (Some(v), Some(n)) = (violation, super::model::record_n(r)) {
            if !violation_done && n > v.event {
                lines.push(violation_line(v));
                violation_done = true;
            }
        }
        match r {
            Record::Step {
                n, t, node, out, ..
            } => {
                for o in out {
                    let Some(obs) = o.get("obs") else { continue };
                    let what = if let Some((role, term)) = role_of(obs) {
                        let now = Some((role.clone(), term));
                        match last_role.get_mut(*node) {
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
                    lines.push(Line {
                        t: *t,
                        n: Some(*n),
                        node: node_name(&names, *node),
                        what,
                    });
                }
            }
            Record::Fault {
                n, t, fault, noop, ..
            } => {
                if let Fault::Crash(id) = fault {
                    if let Some(last) = last_role.get_mut(*id) {
                        *last = None;
                    }
                }
                let (node, mut what) = describe_fault(&names, fault);
                if *noop {
                    what.push_str(" (no-op)");
                }
                lines.push(Line {
                    t: *t,
                    n: Some(*n),
                    node,
                    what,
                });
            }
            Record::Note { n, t, text } => lines.push(Line {
                t: *t,
                n: Some(*n),
                node: "-".into(),
                what: format!("note: {}", text.replace('\n', " ")),
            }),
            Record::Branch { n, t, seed } => lines.push(Line {
                t: *t,
                n: Some(*n),
                node: "-".into(),
                what: format!("branch: every random stream from seed {seed} on"),
            }),
            _ => {}
        }
    }
    if let (Some(v), false) = (violation, violation_done) {
        lines.push(violation_line(v));
    }

    let mut out = String::new();
    let name = scenario.get("name").and_then(Value::as_str).unwrap_or("?");
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
    for l in &lines {
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
    let verdict = match trace.result() {
        None => {
            "verdict   TRUNCATED: the trace has no result record (the run did not finish)".into()
        }
        Some((Verdict::Ok, _)) => "verdict   ok: all checks held".to_string(),
        Some((Verdict::Violation, Some(v))) => format!(
            "verdict   VIOLATION: {} at {} (event {})",
            v.failure.property,
            secs(v.time),
            v.event
        ),
        Some((Verdict::Violation, None)) => "verdict   VIOLATION".to_string(),
        Some((Verdict::Unknown, _)) => {
            let checks: Vec<&str> = trace.undecided().iter().map(|u| u.check.as_str()).collect();
            format!("verdict   UNKNOWN: {} undecided", checks.join(", "))
        }
    };
    out.push_str(&cut(&verdict, width));
    out
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
