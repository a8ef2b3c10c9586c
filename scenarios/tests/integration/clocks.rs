//! Per-node clocks as a user meets them: a run with drifting and jumping clocks is traced
//! with each node's drift in the header and each jump as a fault record, replays, and is
//! rebuilt byte for byte from its header; a trace whose clocks were changed does not replay.

use crate::common::{sim, stdout, tmp};

/// A traced run of the Raft clock scenario: its lines.
fn traced(seed: &str) -> Vec<String> {
    let trace = tmp(&format!("clock-{seed}.jsonl"));
    let o = sim(&[
        "run",
        "--seed",
        seed,
        "scenarios/raft/clock-drift.json",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn replay(name: &str, lines: &[String]) -> (Option<i32>, String) {
    let path = tmp(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let o = sim(&["replay", path.to_str().unwrap()]);
    (o.status.code(), stdout(&o))
}

#[test]
fn a_run_with_drifting_clocks_replays_and_a_changed_clock_diverges() {
    let lines = traced("2");
    assert_eq!(lines, traced("2"), "deterministic");
    let header = &lines[0];
    assert!(header.contains(r#""clock":{"drift_ppm":"#), "{header}");
    assert!(
        header.contains(r#""drawn":{"clocks":{"drift_ppm":["#),
        "{header}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains(r#""fault":{"clock_jump":"#)));
    assert!(lines
        .iter()
        .any(|l| l.contains(r#""fault":{"clock_drift":"#)));
    let (code, out) = replay("ok.jsonl", &lines);
    assert_eq!(code, Some(0), "{out}");
    // Another drift for the first server: its timers land elsewhere.
    let at = header.find(r#""clock":{"drift_ppm":"#).unwrap() + 21;
    let end = at + header[at..].find('}').unwrap();
    let drift: i64 = header[at..end].parse().unwrap();
    let mut changed = lines.clone();
    changed[0].replace_range(at..end, &(drift + 1).to_string());
    let (code, out) = replay("drift.jsonl", &changed);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("DIVERGED"), "{out}");
    // Without its clock jumps the nodes read other times.
    let jumpless: Vec<String> = lines
        .iter()
        .filter(|l| !l.contains("clock_jump"))
        .cloned()
        .collect();
    let (code, out) = replay("jumpless.jsonl", &jumpless);
    assert_eq!(code, Some(1), "{out}");
}
