//! Reactive faults on the ping-pong example: they strike right after the step that provoked
//! them, are deterministic, are repaired by the end of their window, and holds deliver what
//! they held back.

use crate::engine::{RunResult, Sim, SimConfig};
use crate::engine_tests::Buf;
use crate::example::{PingNode, PingPongConfig, PongCountChecker, PongHarness};
use crate::faults::Fault;
use crate::network::NetworkConfig;
use crate::reactive::{MarkRuleProfile, ReactiveProfile};
use crate::replay::replay;
use crate::rng::{stream, Purpose};
use crate::swarm::Knob;
use crate::trace::{NodeSpec, Record, Trace, TraceSink, Verdict};

fn ping_cfg() -> PingPongConfig {
    PingPongConfig {
        nodes: 4,
        interval_us: 20_000,
        bug: false,
        panic_at_pong: None,
    }
}

fn run(profile: &ReactiveProfile, seed: u64) -> (RunResult, String) {
    let (reactive, _) = profile.draw(100_000, 1_500_000, &mut stream(seed, Purpose::Swarm));
    let cfg = SimConfig {
        seed,
        nodes: (0..4)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                client: false,
                clock: Default::default(),
            })
            .collect(),
        network: NetworkConfig {
            latency_ms: [1.0, 10.0],
            ..NetworkConfig::reliable()
        },
        deadline: 2_000_000,
        faults: vec![(1_500_000, Fault::Release)],
        reactive: Some(reactive),
        branches: vec![],
    };
    let header = Record::Header {
        format: crate::trace::FORMAT_VERSION,
        seed,
        scenario: serde_json::json!({"test": true}),
        source: "test".into(),
        nodes: cfg.nodes.clone(),
        network: cfg.network.clone(),
        drawn: serde_json::Value::Null,
    };
    let buf = Buf::default();
    let mut sim = Sim::new(cfg, ping_cfg(), PongHarness);
    sim.add_checker(Box::new(PongCountChecker::default()));
    sim.set_trace(TraceSink::new(Box::new(buf.clone())), header);
    let (result, _, io) = sim.run();
    io.unwrap();
    let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
    (result, text)
}

#[test]
fn a_write_provokes_a_crash_one_microsecond_later_and_its_restart() {
    let profile = ReactiveProfile {
        crash_after_persist: Knob::Fixed(0.05),
        flash: Knob::Fixed(0.5),
        down_ms: [50.0, 200.0],
        ..ReactiveProfile::default()
    };
    let (r, text) = run(&profile, 4);
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.violation);
    let crashes: Vec<_> = r
        .reactive_faults
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Crash(_)))
        .collect();
    assert!(crashes.len() >= 5, "{:?}", r.reactive_faults);
    let restarts = r
        .reactive_faults
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Restart(_)))
        .count();
    assert_eq!(crashes.len(), restarts, "every reactive crash is repaired");
    let trace = Trace::parse(&text).unwrap();
    let records: Vec<&Record> = trace.records.iter().map(|(_, r)| r).collect();
    for (i, rec) in records.iter().enumerate() {
        let Record::Fault {
            t,
            fault: Fault::Crash(node),
            reactive: true,
            ..
        } = rec
        else {
            continue;
        };
        assert!(
            (100_000..1_500_000).contains(t),
            "crash at {t} is outside the window"
        );
        // The provoking step: the same node persisted something 1 µs earlier.
        let provoked = records[..i].iter().rev().any(|r| match r {
            Record::Step {
                node: n,
                t: ts,
                out,
                ..
            } => *n == *node && ts + 1 == *t && out.iter().any(|o| o.get("persist").is_some()),
            _ => false,
        });
        assert!(
            provoked,
            "the crash of n{node} at {t} follows a write of n{node}"
        );
    }
    // Deterministic, and the trace replays (reactive crashes are ordinary fault records).
    let (r2, text2) = run(&profile, 4);
    assert_eq!(
        (text2, r2.reactive_faults),
        (text.clone(), r.reactive_faults)
    );
    replay::<PingNode>(&ping_cfg(), &trace).expect("the trace replays");
    // Off by default: the same profile without rates strikes nothing.
    let (r3, _) = run(&ReactiveProfile::default(), 4);
    assert!(r3.reactive_faults.is_empty());
}

#[test]
fn a_hold_delays_messages_until_the_release_mark_and_loses_none() {
    let profile = ReactiveProfile {
        rules: vec![MarkRuleProfile {
            mark: "pong".into(),
            crash: Knob::Fixed(0.0),
            isolate: Knob::Fixed(0.0),
            hold: Knob::Fixed(0.2),
            for_ms: [30.0, 100.0],
            after_ms: [0.0, 0.0],
            release_on: Some("pong".into()),
            release_same_node: Knob::Fixed(0.0),
        }],
        max_hold_ms: 400.0,
        ..ReactiveProfile::default()
    };
    let (r, text) = run(&profile, 9);
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.violation);
    assert!(r.stats.held >= 5, "held {}", r.stats.held);
    assert!(text.contains("released"), "the trace notes each release");
    // Nothing is lost on a reliable network: every message sent is delivered, held ones late.
    assert_eq!(r.stats.dropped(), 0);
    let in_flight_at_end = r.stats.messages_sent + r.stats.duplicated - r.stats.messages_delivered;
    assert!(
        in_flight_at_end < 10,
        "{in_flight_at_end} messages never arrived"
    );
    let holds = r
        .reactive_faults
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Hold { .. }))
        .count();
    assert!(holds > 0);
    let (_, again) = run(&profile, 9);
    assert_eq!(again, text);
}
