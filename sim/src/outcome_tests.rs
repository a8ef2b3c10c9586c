//! Run outcomes beyond ok and violation: checks that cannot decide ("unknown", never a pass)
//! and panics of node, harness or checker code (recorded violations, never a crash).

use crate::checker::{Checker, Failure};
use crate::engine::{RunResult, Sim, SimConfig, World};
use crate::example::{PingNode, PingObs, PingPongConfig, PongCountChecker, PongHarness};
use crate::harness::Harness;
use crate::network::NetworkConfig;
use crate::node::{NodeId, Time};
use crate::replay::replay;
use crate::trace::{NodeSpec, Record, Trace, TraceSink, Verdict};

use crate::engine_tests::Buf;

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        nodes: (0..3)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                client: false,
                clock: Default::default(),
            })
            .collect(),
        network: NetworkConfig::reliable(),
        deadline: 1_000_000,
        faults: vec![],
        reactive: None,
        branches: vec![],
    }
}

fn node_config(panic_at_pong: Option<u64>) -> PingPongConfig {
    PingPongConfig {
        nodes: 3,
        interval_us: 20_000,
        bug: false,
        panic_at_pong,
    }
}

/// Runs ping-pong with `harness` and `checkers`; returns the result and the trace text.
fn run<H: Harness<PingNode>>(
    seed: u64,
    panic_at_pong: Option<u64>,
    harness: H,
    checkers: Vec<Box<dyn Checker<PingNode>>>,
) -> (RunResult, String) {
    let buf = Buf::default();
    let cfg = config(seed);
    let header = Record::Header {
        format: crate::trace::FORMAT_VERSION,
        seed,
        scenario: serde_json::json!({"test": true}),
        source: "test".into(),
        nodes: cfg.nodes.clone(),
        network: cfg.network.clone(),
        drawn: serde_json::Value::Null,
    };
    let mut sim = Sim::new(cfg, node_config(panic_at_pong), harness);
    for c in checkers {
        sim.add_checker(c);
    }
    sim.set_trace(TraceSink::new(Box::new(buf.clone())), header);
    let (result, _, io) = sim.run();
    io.unwrap();
    let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
    (result, text)
}

fn last_record(text: &str) -> Record {
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// A harness whose end-of-run check cannot decide (like a search out of budget).
struct Undecided;
impl Harness<PingNode> for Undecided {
    fn start(&mut self, _world: &mut World<PingNode>) {}
    fn on_wake(&mut self, _world: &mut World<PingNode>, _tag: u64) {}
    fn finish(&mut self, world: &mut World<PingNode>) -> Result<(), Failure> {
        world.inconclusive("order", "budget of 0 steps spent");
        Ok(())
    }
}

#[test]
fn an_undecided_harness_check_makes_the_run_unknown_not_ok() {
    let (r, text) = run(1, None, Undecided, vec![]);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.violation.is_none());
    assert_eq!(r.unknown.len(), 1);
    assert_eq!(r.unknown[0].check, "order");
    assert_eq!(r.unknown[0].time, 1_000_000);
    match last_record(&text) {
        Record::Result {
            verdict, unknown, ..
        } => {
            assert_eq!(verdict, Verdict::Unknown);
            assert_eq!(unknown, r.unknown);
        }
        other => panic!("the trace must end with its result, not {other:?}"),
    }
    assert!(text
        .lines()
        .last()
        .unwrap()
        .contains("\"verdict\":\"unknown\""));
    let trace = Trace::parse(&text).unwrap();
    assert_eq!(trace.undecided(), r.unknown.as_slice());
}

#[test]
fn an_undecided_checker_makes_the_run_unknown_and_a_decided_one_ok() {
    let small = PongCountChecker::with_budget(Some(3));
    let (r, _) = run(2, None, PongHarness, vec![Box::new(small)]);
    assert_eq!(r.verdict, Verdict::Unknown, "{:?}", r.violation);
    assert_eq!(r.unknown[0].check, "pong count");
    assert!(r.unknown[0].detail.contains("budget of 3 pongs"));
    let ample = PongCountChecker::with_budget(Some(1_000_000));
    let (r, _) = run(2, None, PongHarness, vec![Box::new(ample)]);
    assert_eq!(r.verdict, Verdict::Ok);
    assert!(r.unknown.is_empty());
}

/// Fails at the end, after the harness could not decide.
struct FailsAtEnd;
impl Checker<PingNode> for FailsAtEnd {
    fn name(&self) -> &'static str {
        "fails at end"
    }
    fn on_observation(&mut self, _: Time, _: NodeId, _: &PingObs) -> Result<(), Failure> {
        Ok(())
    }
    fn finish(&mut self, _now: Time) -> Result<(), Failure> {
        Err(Failure::new("end", vec![], "deliberately"))
    }
}

#[test]
fn a_violation_wins_over_unknown() {
    let (r, text) = run(3, None, Undecided, vec![Box::new(FailsAtEnd)]);
    assert_eq!(r.verdict, Verdict::Violation);
    assert_eq!(r.violation.unwrap().failure.property, "end");
    assert!(text
        .lines()
        .last()
        .unwrap()
        .contains("\"verdict\":\"violation\""));
}

#[test]
fn a_node_panic_is_a_violation_with_its_place_and_the_trace_is_complete() {
    let (r, text) = run(4, Some(3), PongHarness, vec![]);
    assert_eq!(r.verdict, Verdict::Violation);
    let v = r.violation.clone().unwrap();
    assert_eq!(v.failure.property, "panic");
    assert_eq!(v.failure.nodes.len(), 1);
    let p = v.panic.clone().expect("the panic's message and place");
    assert!(p.message.starts_with("deliberate panic"), "{p:?}");
    assert!(p.location.starts_with("sim/src/example.rs:"), "{p:?}");
    assert!(v.failure.detail.contains("while handling message"), "{v}");
    assert!(r.end_time < 1_000_000, "the run stops at the panic");
    // The panicking step is the last step; the result record follows it.
    let trace = Trace::parse(&text).unwrap();
    let steps: Vec<&Record> = trace
        .records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| matches!(r, Record::Step { .. }))
        .collect();
    match steps.last().unwrap() {
        Record::Step { n, panic, out, .. } => {
            assert_eq!(*n, v.event);
            assert_eq!(panic.as_ref(), Some(&p));
            assert!(out.is_empty());
        }
        _ => unreachable!(),
    }
    assert_eq!(trace.result().unwrap().0, &Verdict::Violation);
    // Replay reproduces the panic, and a build without it diverges there.
    let summary = replay::<PingNode>(&node_config(Some(3)), &trace).unwrap();
    assert_eq!(summary.panics, 1);
    let d = replay::<PingNode>(&node_config(None), &trace).unwrap_err();
    assert!(d.what.contains("records a panic"), "{d:?}");
    assert_eq!(d.event, v.event);
}

#[test]
fn a_replay_that_panics_is_a_divergence_not_a_crash() {
    let (r, text) = run(5, None, PongHarness, vec![]);
    assert_eq!(r.verdict, Verdict::Ok);
    let trace = Trace::parse(&text).unwrap();
    let d = replay::<PingNode>(&node_config(Some(2)), &trace).unwrap_err();
    assert!(d.what.contains("panicked at sim/src/example.rs:"), "{d:?}");
}

/// A harness with a bug: it panics on its first wake-up.
struct PanickyHarness;
impl Harness<PingNode> for PanickyHarness {
    fn start(&mut self, world: &mut World<PingNode>) {
        world.wake_after(1_000, 0);
    }
    fn on_wake(&mut self, _world: &mut World<PingNode>, _tag: u64) {
        let v: Vec<u8> = Vec::new();
        let _ = v[7];
    }
}

/// A checker with a bug: it panics at its first observation.
struct PanickyChecker;
impl Checker<PingNode> for PanickyChecker {
    fn name(&self) -> &'static str {
        "panicky"
    }
    fn on_observation(&mut self, _: Time, _: NodeId, _: &PingObs) -> Result<(), Failure> {
        panic!("checker bug")
    }
}

#[test]
fn harness_and_checker_panics_are_violations_too() {
    let (r, text) = run(6, None, PanickyHarness, vec![]);
    let v = r.violation.unwrap();
    assert_eq!(v.failure.property, "panic");
    assert!(v.failure.detail.contains("a wake-up of the harness"), "{v}");
    assert!(v.panic.unwrap().message.contains("index out of bounds"));
    assert!(matches!(last_record(&text), Record::Result { .. }));
    let (r, text) = run(6, None, PongHarness, vec![Box::new(PanickyChecker)]);
    let v = r.violation.unwrap();
    assert_eq!(v.panic.unwrap().message, "checker bug");
    assert!(matches!(last_record(&text), Record::Result { .. }));
}

#[test]
fn panics_on_worker_threads_are_caught_per_thread() {
    let results: Vec<RunResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| s.spawn(move || run(10 + i, Some(2 + i), PongHarness, vec![]).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in results.iter().enumerate() {
        let p = r.violation.as_ref().unwrap().panic.as_ref().unwrap();
        assert!(p.message.starts_with("deliberate panic"), "run {i}: {p:?}");
    }
    // Each run is its own: the same seed alone gives the same result.
    let alone = run(10, Some(2), PongHarness, vec![]).0;
    assert_eq!(alone.violation, results[0].violation);
}

/// A harness with a check that lets the run go on (at 200 ms) and, optionally, one that fails
/// at the end of the run.
struct GoesOn {
    fail_at_end: bool,
}
impl Harness<PingNode> for GoesOn {
    fn start(&mut self, world: &mut World<PingNode>) {
        world.wake_after(200_000, 0);
    }
    fn on_wake(&mut self, world: &mut World<PingNode>, _tag: u64) {
        world.fail_later(Failure::new("a value", vec![1], "expected 2, got 3"));
    }
    fn finish(&mut self, _world: &mut World<PingNode>) -> Result<(), Failure> {
        if self.fail_at_end {
            return Err(Failure::new("a history", vec![], "not linearizable"));
        }
        Ok(())
    }
}

#[test]
fn a_check_that_lets_the_run_go_on_fails_it_unless_a_later_check_fails_first() {
    // Alone: the run goes on to its deadline, and its violation is that check's, at 200 ms.
    let (r, text) = run(3, None, GoesOn { fail_at_end: false }, vec![]);
    assert_eq!(r.verdict, Verdict::Violation);
    assert_eq!(r.end_time, 1_000_000, "the run went on to the deadline");
    let v = r.violation.as_ref().unwrap();
    assert_eq!((v.failure.property.as_str(), v.time), ("a value", 200_000));
    assert!(r.also.is_empty());
    assert!(text.contains("a value violated: expected 2, got 3 (the run goes on"));
    // With a check failing at the end: that one is the violation, the first is listed after.
    let (r, text) = run(3, None, GoesOn { fail_at_end: true }, vec![]);
    assert_eq!(r.violation.unwrap().failure.property, "a history");
    assert_eq!(r.also.len(), 1);
    assert_eq!(r.also[0].failure.property, "a value");
    let Record::Result { also, .. } = last_record(&text) else {
        panic!("the trace ends with its result")
    };
    assert_eq!(also[0].failure.property, "a value");
}
