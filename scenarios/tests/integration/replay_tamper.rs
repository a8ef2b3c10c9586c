//! `sim replay` compares every replayed output with the trace, through blobs, deltas and
//! snapshots: a change to any recorded payload (inline in a step, in a value blob, in a
//! snapshot's bytes, in a delta's literal, in a reply) is a divergence at the step that uses
//! it, named by its line; a payload written another way with the same meaning (fields in
//! another order, spaces) is not.

use crate::common::{sim, stdout, tmp};

/// A traced KV run with snapshots (two byte-string blobs, each followed by a delta), client
/// replies and value blobs: its lines.
fn kv_trace() -> Vec<String> {
    let trace = tmp("kv.jsonl");
    let o = sim(&[
        "run",
        "--seed",
        "1",
        "scenarios/kv/snapshot-rpc.json",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = std::fs::read_to_string(&trace).unwrap();
    text.lines().map(str::to_string).collect()
}

/// Replays `lines`; its exit code and output.
fn replay(name: &str, lines: &[String]) -> (Option<i32>, String) {
    let path = tmp(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let o = sim(&["replay", path.to_str().unwrap()]);
    (o.status.code(), stdout(&o))
}

/// The first line (0-based) at or after `from` that satisfies `p`.
fn find(lines: &[String], from: usize, p: impl Fn(&str) -> bool) -> usize {
    (from..lines.len())
        .find(|&i| p(&lines[i]))
        .expect("the trace has such a line")
}

/// The first record after the blob lines at `i` (blobs are written just before the record
/// that first uses them).
fn user_of_blob(lines: &[String], i: usize) -> usize {
    find(lines, i, |l| {
        !l.starts_with("{\"type\":\"blob\"") && !l.starts_with("{\"type\":\"forget\"")
    })
}

/// Changes the first digit at or after byte `from` of `line` (to another digit).
fn bump_digit(line: &str, from: usize) -> String {
    let at = from
        + line[from..]
            .find(|c: char| c.is_ascii_digit())
            .expect("a digit");
    let d = line.as_bytes()[at] - b'0';
    let mut s = line.to_string();
    s.replace_range(at..at + 1, &((d + 1) % 10).to_string());
    s
}

#[track_caller]
fn diverges_at(name: &str, lines: &[String], line: usize) {
    let (code, out) = replay(name, lines);
    assert_eq!(code, Some(1), "{name}: {out}");
    let expect = format!("(line {} of", line + 1);
    assert!(
        out.contains("DIVERGED") && out.contains(&expect),
        "{name}: expected a divergence at line {}: {out}",
        line + 1
    );
}

#[test]
fn every_kind_of_tampered_payload_is_a_divergence_at_its_line() {
    let lines = kv_trace();
    let (code, out) = replay("untouched.jsonl", &lines);
    assert_eq!(code, Some(0), "{out}");

    // A snapshot's bytes (a whole byte-string blob, UTF-8 text).
    let i = find(&lines, 0, |l| {
        l.starts_with("{\"type\":\"blob\"") && l.contains(",\"bytes\":\"")
    });
    let mut t = lines.clone();
    t[i] = bump_digit(&lines[i], lines[i].find(",\"bytes\":\"").unwrap() + 40);
    diverges_at("snapshot.jsonl", &t, user_of_blob(&lines, i + 1));

    // A literal piece of a snapshot's delta against the previous one.
    let i = find(&lines, 0, |l| {
        l.contains(",\"base\":") && l.contains("\"bytes\":[")
    });
    let lit = lines[i].find("],\"").expect("a literal piece") + 3;
    let mut t = lines.clone();
    t[i] = bump_digit(&lines[i], lit);
    assert_ne!(t[i], lines[i]);
    diverges_at("delta.jsonl", &t, user_of_blob(&lines, i + 1));

    // A field of a message held in a value blob.
    let i = find(&lines, 0, |l| {
        l.contains("\"value\":{\"term\":") && l.contains("\"leader_commit\":")
    });
    let mut t = lines.clone();
    t[i] = bump_digit(&lines[i], lines[i].find("\"leader_commit\":").unwrap());
    diverges_at("value-blob.jsonl", &t, user_of_blob(&lines, i + 1));

    // An inline output (a timer's deadline), a message written inline, a reply.
    for (name, key) in [
        ("timer.jsonl", "\"at\":"),
        ("request.jsonl", "{\"Request\":{\"client\":"),
        ("reply.jsonl", "\"reply\":"),
    ] {
        let i = find(&lines, 1, |l| {
            l.starts_with("{\"type\":\"step\"") && l.contains(key)
        });
        let mut t = lines.clone();
        t[i] = bump_digit(&lines[i], lines[i].find(key).unwrap());
        diverges_at(name, &t, i);
    }
}

#[test]
fn a_payload_written_another_way_with_the_same_meaning_still_replays() {
    let lines = kv_trace();
    let i = find(&lines, 1, |l| l.contains("{\"timer\":{\"id\":"));
    let mut t = lines.clone();
    // Fields in another order and a space: not the writer's text, the same JSON.
    let at = lines[i].find("{\"timer\":{\"id\":").unwrap();
    let end = at + lines[i][at..].find("}}").unwrap() + 2;
    let v: serde_json::Value = serde_json::from_str(&lines[i][at..end]).unwrap();
    let timer = &v["timer"];
    let other = format!(
        "{{\"timer\": {{\"tag\":{},\"at\":{},\"id\":{}}}}}",
        timer["tag"], timer["at"], timer["id"]
    );
    t[i].replace_range(at..end, &other);
    assert_ne!(t[i], lines[i]);
    let (code, out) = replay("reordered.jsonl", &t);
    assert_eq!(code, Some(0), "{out}");
}
