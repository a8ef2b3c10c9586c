//! Engine tests on the ping-pong example: determinism, replay, faults, checkers.

use crate::engine::{RunResult, Sim, SimConfig};
use crate::example::{PingNode, PingPongConfig, PongCountChecker, PongHarness};
use crate::faults::Fault;
use crate::network::NetworkConfig;
use crate::replay::replay;
use crate::trace::{NodeSpec, Record, Trace, TraceSink, Verdict};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// An in-memory trace sink the test can read back while the run holds a clone.
#[derive(Clone, Default)]
pub(crate) struct Buf(pub(crate) Rc<RefCell<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(seed: u64, network: NetworkConfig, faults: Vec<(u64, Fault)>) -> SimConfig {
    SimConfig {
        seed,
        nodes: (0..4)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                client: false,
                clock: Default::default(),
            })
            .collect(),
        network,
        deadline: 2_000_000,
        faults,
        reactive: None,
        branches: vec![],
    }
}

fn lossy() -> NetworkConfig {
    NetworkConfig {
        latency_ms: [1.0, 30.0],
        drop_request: 0.1,
        drop_reply: 0.1,
        duplicate: 0.05,
        long_delay: None,
    }
}

fn run(cfg: SimConfig, bug: bool) -> (RunResult, String) {
    let buf = Buf::default();
    let node_cfg = PingPongConfig {
        nodes: cfg.nodes.len(),
        interval_us: 20_000,
        bug,
        panic_at_pong: None,
    };
    let header = Record::Header {
        format: crate::trace::FORMAT_VERSION,
        seed: cfg.seed,
        scenario: serde_json::json!({"test": true}),
        source: "test".into(),
        nodes: cfg.nodes.clone(),
        network: cfg.network.clone(),
        drawn: serde_json::Value::Null,
    };
    let mut sim = Sim::new(cfg, node_cfg, PongHarness);
    sim.add_checker(Box::new(PongCountChecker::default()));
    sim.set_trace(TraceSink::new(Box::new(buf.clone())), header);
    let (result, _, io) = sim.run();
    io.unwrap();
    let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
    (result, text)
}

fn faults() -> Vec<(u64, Fault)> {
    vec![
        (300_000, Fault::Crash(1)),
        (500_000, Fault::Partition(vec![vec![0, 1], vec![2, 3]])),
        (900_000, Fault::Restart(1)),
        (1_000_000, Fault::Heal),
        (1_100_000, Fault::Cut { from: 0, to: 2 }),
        (1_500_000, Fault::Heal),
    ]
}

#[test]
fn same_seed_gives_byte_identical_trace() {
    let (r1, t1) = run(config(42, lossy(), faults()), false);
    let (r2, t2) = run(config(42, lossy(), faults()), false);
    assert_eq!(r1.verdict, Verdict::Ok, "{:?}", r1.violation);
    assert!(r1.stats.steps > 200);
    assert_eq!(t1, t2);
    assert_eq!(r1.stats, r2.stats);
}

#[test]
fn different_seeds_give_different_runs() {
    let (_, t1) = run(config(1, lossy(), faults()), false);
    let (_, t2) = run(config(2, lossy(), faults()), false);
    assert_ne!(t1, t2);
}

#[test]
fn replay_reproduces_and_detects_tampering() {
    let (_, text) = run(config(7, lossy(), faults()), false);
    let trace = Trace::parse(&text).unwrap();
    let cfg = PingPongConfig {
        nodes: 4,
        interval_us: 20_000,
        bug: false,
        panic_at_pong: None,
    };
    let summary = replay::<PingNode>(&cfg, &trace).unwrap();
    assert!(summary.steps > 200);
    // Change one pong's sequence number in a delivered message: the receiver's observation
    // then differs from the recorded one.
    let pos = text.find("{\"pong\":{\"seq\":").unwrap();
    let line_no = text[..pos].matches('\n').count() + 1;
    let mut tampered = text.clone();
    tampered.replace_range(pos..pos + 15, "{\"pong\":{\"seq\":9");
    let trace = Trace::parse(&tampered).unwrap();
    let div = replay::<PingNode>(&cfg, &trace).unwrap_err();
    assert!(
        div.line >= line_no,
        "diverged at line {} before the change at {line_no}",
        div.line
    );
    // A node with a different bug flag diverges too.
    let buggy = PingPongConfig { bug: true, ..cfg };
    let trace = Trace::parse(&text).unwrap();
    assert!(replay::<PingNode>(&buggy, &trace).is_err());
}

#[test]
fn crash_keeps_durable_state_and_drops_messages_and_timers() {
    let (r, text) = run(config(3, NetworkConfig::reliable(), faults()), false);
    assert_eq!(r.verdict, Verdict::Ok);
    assert_eq!(r.stats.crashes, 1);
    assert_eq!(r.stats.restarts, 1);
    assert!(
        r.stats.dropped_crashed > 0,
        "pings to the dead node are lost"
    );
    assert!(
        r.stats.dropped_partition > 0,
        "pings across the partition are lost"
    );
    // No step of node 1 between its crash and restart.
    let trace = Trace::parse(&text).unwrap();
    let mut down = false;
    for (_, rec) in &trace.records {
        match rec {
            Record::Fault {
                fault: Fault::Crash(1),
                ..
            } => down = true,
            Record::Fault {
                fault: Fault::Restart(1),
                ..
            } => down = false,
            Record::Step {
                node: 1,
                t,
                inc,
                input,
                ..
            } => {
                assert!(!down, "node 1 stepped at {t} while down");
                if *t >= 900_000 {
                    assert_eq!(*inc, 1);
                } else {
                    assert_eq!(*inc, 0);
                }
                let _ = input;
            }
            _ => {}
        }
    }
    // The restarted node resumed its durable counts: its ping sequence numbers never repeat.
    let mut seqs = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| l.contains("\"node\":1,")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for o in v["out"].as_array().into_iter().flatten() {
            if let Some(seq) = o.pointer("/obs/ping_sent/seq") {
                assert!(
                    seqs.insert(seq.as_u64().unwrap()),
                    "ping seq {seq} reused after restart"
                );
            }
        }
    }
    assert!(seqs.len() > 10);
}

#[test]
fn checker_stops_the_run_with_a_violation() {
    let (r, text) = run(config(5, NetworkConfig::reliable(), vec![]), true);
    assert_eq!(r.verdict, Verdict::Violation);
    let v = r.violation.unwrap();
    assert_eq!(v.failure.property, "pong count");
    assert!(v.time < 2_000_000 && v.event > 0);
    assert!(text
        .lines()
        .last()
        .unwrap()
        .contains("\"verdict\":\"violation\""));
}

#[test]
fn deadline_bounds_virtual_time() {
    let (r, text) = run(config(9, lossy(), vec![]), false);
    assert_eq!(r.end_time, 2_000_000);
    let trace = Trace::parse(&text).unwrap();
    for (_, rec) in &trace.records {
        if let Record::Step { t, .. } = rec {
            assert!(*t <= 2_000_000);
        }
    }
}

#[test]
fn a_branch_keeps_the_past_changes_the_future_and_replays() {
    let with = |branches: Vec<crate::engine::Branch>| {
        let mut cfg = config(11, lossy(), faults());
        cfg.branches = branches;
        run(cfg, false)
    };
    let (plain, t0) = with(vec![]);
    let at = plain.stats.events / 2;
    let branch = crate::engine::Branch {
        at_event: at,
        seed: 99,
    };
    let (r1, t1) = with(vec![branch]);
    assert_eq!(r1.verdict, Verdict::Ok, "{:?}", r1.violation);
    // Records before the branch are the same; after it they differ.
    let before = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["n"].as_u64().is_some_and(|n| n <= at)
            })
            .map(String::from)
            .collect()
    };
    assert_eq!(before(&t0), before(&t1));
    assert_ne!(t0, t1);
    assert!(t1.contains("\"type\":\"branch\""));
    // Deterministic, and the trace replays (the replay reseeds the nodes at the branch).
    let (_, t2) = with(vec![branch]);
    assert_eq!(t1, t2);
    let cfg = PingPongConfig {
        nodes: 4,
        interval_us: 20_000,
        bug: false,
        panic_at_pong: None,
    };
    replay::<PingNode>(&cfg, &Trace::parse(&t1).unwrap()).expect("a branched trace replays");
    // Marks record where they first happened.
    assert!(r1
        .marks
        .iter()
        .any(|m| m.mark.name == "pong" && m.first_event > 0));
}
