//! End-to-end tests of the `sim` command as a user runs it.

use crate::common::{sim, stderr, stdout, tmp};

#[test]
fn run_then_replay_the_trace() {
    let trace = tmp("basic.jsonl");
    let t = trace.to_str().unwrap();
    let o = sim(&[
        "run",
        "--seed",
        "3",
        "scenarios/pingpong/basic.json",
        "--trace",
        t,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("result    ok"));
    let o = sim(&["replay", t]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("replay    ok:"));
}

#[test]
fn same_seed_same_trace_bytes_through_the_cli() {
    let (a, b, c) = (tmp("a.jsonl"), tmp("b.jsonl"), tmp("c.jsonl"));
    for (p, seed) in [(&a, "11"), (&b, "11"), (&c, "12")] {
        let o = sim(&[
            "run",
            "--seed",
            seed,
            "scenarios/pingpong/basic.json",
            "--trace",
            p.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0));
    }
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn a_violation_exits_1_and_says_how_to_reproduce() {
    let o = sim(&["run", "--seed", "2", "scenarios/pingpong/buggy.json"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("VIOLATION: pong count violated"), "{out}");
    assert!(
        out.contains("sim run --seed 2 scenarios/pingpong/buggy.json --trace"),
        "{out}"
    );
}

#[test]
fn tampered_trace_diverges_with_neighbours() {
    let trace = tmp("tamper.jsonl");
    let t = trace.to_str().unwrap();
    let o = sim(&[
        "run",
        "--seed",
        "4",
        "scenarios/pingpong/basic.json",
        "--trace",
        t,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&trace).unwrap();
    let tampered = text.replacen("{\"ping\":{\"seq\":3}", "{\"ping\":{\"seq\":77}", 1);
    assert_ne!(text, tampered);
    std::fs::write(&trace, tampered).unwrap();
    let o = sim(&["replay", t]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("DIVERGED at event"), "{out}");
    assert!(out.contains("neighbouring events"), "{out}");
}

/// Each bad input: exit 2, one line on stderr naming the file, the place and the problem.
#[test]
fn bad_inputs_get_one_clear_line() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing.json", String::new(), "missing.json: cannot read"),
        ("syntax.json", "{\"name\": \"x\",\n \"system\": }".into(), "syntax.json: system (line 2 column 12): expected value"),
        (
            "unknown.json",
            r#"{"name":"x","system":"pingpong","servers":2,"duration_ms":10,"pingpong":{"interval_ms":1},"netwrk":{}}"#.into(),
            "unknown field `netwrk`",
        ),
        (
            "prob.json",
            r#"{"name":"x","system":"pingpong","servers":2,"duration_ms":10,"pingpong":{"interval_ms":1},"network":{"duplicate":1.5}}"#.into(),
            "prob.json: network: duplicate: a probability must be between 0 and 1, got 1.5",
        ),
        (
            "system.json",
            r#"{"name":"x","system":"paxos","servers":2,"duration_ms":10}"#.into(),
            "system (line 1 column 28): unknown variant `paxos`",
        ),
        (
            "node.json",
            r#"{"name":"x","system":"pingpong","servers":2,"duration_ms":10,"pingpong":{"interval_ms":1},"faults":{"schedule":[{"at_ms":1,"fault":{"partition":[[0],[5]]}}]}}"#.into(),
            "node.json: faults.schedule[0]: node 5 does not exist",
        ),
    ];
    for (name, content, expect) in cases {
        let path = tmp(name);
        if !content.is_empty() {
            std::fs::write(&path, content).unwrap();
        }
        let o = sim(&["run", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("error: "), "{name}: {err}");
        assert!(
            err.contains(expect),
            "{name}: expected {expect:?} in {err:?}"
        );
        assert!(!err.contains("panicked"));
    }
    // A malformed trace.
    let path = tmp("bad.jsonl");
    std::fs::write(&path, "{\"type\":\"step\"}\n").unwrap();
    let o = sim(&["replay", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.jsonl: line 1:"), "{}", stderr(&o));
    // An unknown flag.
    let o = sim(&["run", "--frobnicate", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unexpected argument '--frobnicate'"));
}

/// A KV run's trace is itself a history `sim lincheck` reads: a correct run checks as
/// linearizable (exit 0), a run of the stale-reads bug as not (exit 1).
#[test]
fn lincheck_reads_histories_from_simulation_traces() {
    for (file, seed, code) in [
        (
            "scenarios/kv/persist-partition-unreliable-linearizable.json",
            "3",
            0,
        ),
        (
            "scenarios/buggy/kv-stale-reads-linearizability.json",
            "1",
            1,
        ),
    ] {
        let trace = tmp(&format!("lin-{seed}-{code}.jsonl"));
        let t = trace.to_str().unwrap();
        let o = sim(&["run", "--seed", seed, file, "--trace", t]);
        assert_eq!(o.status.code(), Some(code), "{}", stdout(&o));
        let o = sim(&["lincheck", t]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{file}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).contains("(format trace)"), "{}", stdout(&o));
    }
}

/// The ping-pong scenario with a pong-count checker whose budget is too small to check every
/// pong: a run whose verdict is "unknown" whatever the seed.
fn undecided_scenario() -> std::path::PathBuf {
    let text = std::fs::read_to_string(crate::common::root().join("scenarios/pingpong/basic.json"))
        .unwrap()
        .replace(
            "\"pingpong\": {\"interval_ms\": 20}",
            "\"pingpong\": {\"interval_ms\": 20, \"check_budget\": 3}",
        );
    assert!(text.contains("check_budget"));
    let path = tmp("undecided.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// A check that could not decide is never "ok": `sim run` says UNKNOWN and exits 3; the
/// trace records it; replay, view and the text timeline say so too.
#[test]
fn an_unknown_run_exits_3_and_is_never_reported_ok() {
    let file = undecided_scenario();
    let trace = tmp("undecided.jsonl");
    let t = trace.to_str().unwrap();
    let o = sim(&["run", "--seed", "5", file.to_str().unwrap(), "--trace", t]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{}", stderr(&o));
    assert!(
        out.contains("result    UNKNOWN: pong count undecided at"),
        "{out}"
    );
    assert!(!out.contains("result    ok"), "{out}");
    let last = std::fs::read_to_string(&trace).unwrap();
    let last = last.lines().last().unwrap();
    assert!(last.contains("\"verdict\":\"unknown\""), "{last}");
    assert!(last.contains("\"check\":\"pong count\""), "{last}");
    let o = sim(&["replay", t]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("recorded  unknown"), "{}", stdout(&o));
    let o = sim(&["view", "--text", t]);
    assert!(
        stdout(&o).ends_with("verdict   UNKNOWN: pong count undecided\n"),
        "{}",
        stdout(&o)
    );
}

/// A node that panics: a violation (exit 1) naming the panic's place, node and event, with
/// no crash of the tool and no panic message on stderr; the trace is complete, and its
/// replay reproduces the panic. Cut short, a trace is never "ok".
#[test]
fn a_panicking_node_is_a_violation_whose_trace_replays() {
    let trace = tmp("panic.jsonl");
    let t = trace.to_str().unwrap();
    let o = sim(&[
        "run",
        "--seed",
        "2",
        "scenarios/pingpong/panic.json",
        "--trace",
        t,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.contains("VIOLATION: panic at"), "{out}");
    assert!(out.contains("panicked at sim/src/example.rs:"), "{out}");
    assert!(out.contains("while handling message"), "{out}");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let o = sim(&["replay", t]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("the recorded panic reproduces"),
        "{}",
        stdout(&o)
    );
    // Cut short: never ok.
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = tmp("panic-cut.jsonl");
    std::fs::write(&cut, lines[..lines.len() / 2].join("\n")).unwrap();
    let o = sim(&["replay", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(!stdout(&o).contains("replay    ok"), "{}", stdout(&o));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
}

/// A trace of a format this build does not read: exit 2, one line naming the file, the line
/// and the problem (never a parse error deep in a record).
#[test]
fn a_trace_of_another_format_gets_one_clear_line() {
    let path = tmp("future.jsonl");
    let header = r#"{"type":"header","format":99,"seed":1,"scenario":{},"source":"x","nodes":[],"network":{}}"#;
    std::fs::write(&path, format!("{header}\n")).unwrap();
    for cmd in ["replay", "view"] {
        let o = sim(&[cmd, path.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(
            err.contains("future.jsonl: line 1: trace format 99 is not supported"),
            "{cmd}: {err}"
        );
    }
}

/// A `.jsonl.zst` trace is written compressed and read transparently by replay, view and
/// lincheck; it holds the same records as the plain trace of the same run.
#[test]
fn a_compressed_trace_reads_like_a_plain_one() {
    let (plain, zst) = (tmp("kv.jsonl"), tmp("kv.jsonl.zst"));
    for p in [&plain, &zst] {
        let o = sim(&[
            "run",
            "--seed",
            "2",
            "scenarios/kv/basic.json",
            "--trace",
            p.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    }
    let bytes = std::fs::read(&zst).unwrap();
    assert_eq!(&bytes[..4], &[0x28, 0xB5, 0x2F, 0xFD], "a zstd frame");
    let mut decompressed = Vec::new();
    std::io::Read::read_to_end(
        &mut sim::trace::files::open(&zst).unwrap(),
        &mut decompressed,
    )
    .unwrap();
    assert_eq!(decompressed, std::fs::read(&plain).unwrap());
    let o = sim(&["replay", zst.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("replay    ok:"), "{}", stdout(&o));
    let (a, b) = (
        sim(&["view", "--text", plain.to_str().unwrap()]),
        sim(&["view", "--text", zst.to_str().unwrap()]),
    );
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    let o = sim(&["lincheck", zst.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

/// Traces of format 1 (before blobs and message ids) are still read: the kept one replays.
#[test]
fn a_format_1_trace_still_replays() {
    let o = sim(&["replay", "traces/format1/pingpong-basic-seed-1.jsonl"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("replay    ok:"), "{}", stdout(&o));
}
