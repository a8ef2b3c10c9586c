//! Engine tests of per-node clocks: a node reads its own clock, its timers run at its rate,
//! jumps move its readings and not its timers, and traces of drifting runs replay.

use crate::clock::ClockSpec;
use crate::engine::{Sim, SimConfig};
use crate::engine_tests::Buf;
use crate::example::{PingDurable, PingWrite};
use crate::faults::Fault;
use crate::harness::Idle;
use crate::network::NetworkConfig;
use crate::node::{Ctx, Message, Node, NodeId, Time, TimerId};
use crate::replay::replay;
use crate::trace::{NodeSpec, Record, Trace, TraceSink};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A node that sends nothing: every `period` µs of its clock it reports what its clock reads.
struct Ticker {
    period: Time,
}

/// No messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum NoMsg {}

impl Message for NoMsg {
    fn kind(&self) -> &'static str {
        match *self {}
    }
    fn size_bytes(&self) -> usize {
        match *self {}
    }
}

impl Node for Ticker {
    type Config = Time;
    type Msg = NoMsg;
    type Input = ();
    type Reply = Time;
    type Obs = Time;
    type Durable = PingDurable;

    fn start(period: &Time, ctx: &mut Ctx<'_, Self>, _d: &PingDurable) -> Self {
        ctx.set_timer(*period, 0);
        Ticker { period: *period }
    }
    fn on_message(&mut self, _ctx: &mut Ctx<'_, Self>, _from: NodeId, msg: NoMsg) {
        match msg {}
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _timer: TimerId, _tag: u64) {
        let now = ctx.now();
        ctx.observe(now);
        // A durable write, so the trace has more than timers to compare.
        ctx.persist(PingWrite::Pings(now));
        ctx.set_timer(self.period, 0);
    }
    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, _input: ()) -> Time {
        ctx.now()
    }
}

fn config(drifts: &[i64], faults: Vec<(Time, Fault)>) -> SimConfig {
    SimConfig {
        seed: 3,
        nodes: drifts
            .iter()
            .enumerate()
            .map(|(i, &drift_ppm)| NodeSpec {
                name: format!("n{i}"),
                client: false,
                clock: ClockSpec { drift_ppm },
            })
            .collect(),
        network: NetworkConfig::default(),
        deadline: 1_000_000,
        faults,
        reactive: None,
        branches: vec![],
    }
}

/// Runs 100 ms tickers; returns the trace and each node's (true time, clock reading) reports.
fn run(cfg: SimConfig) -> (String, Vec<Vec<(Time, Time)>>) {
    let buf = Buf::default();
    let header = Record::Header {
        format: crate::trace::FORMAT_VERSION,
        seed: cfg.seed,
        scenario: serde_json::json!({"test": "clocks"}),
        source: "test".into(),
        nodes: cfg.nodes.clone(),
        network: cfg.network.clone(),
        drawn: Value::Null,
    };
    let n = cfg.nodes.len();
    let mut sim = Sim::<Ticker, Idle>::new(cfg, 100_000, Idle);
    sim.set_trace(TraceSink::new(Box::new(buf.clone())), header);
    let (_, _, io) = sim.run();
    io.unwrap();
    let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
    let mut seen = vec![Vec::new(); n];
    for (_, rec) in Trace::parse(&text).unwrap().records {
        if let Record::Step { t, node, out, .. } = rec {
            for o in out {
                if let Some(v) = o.get("obs").and_then(Value::as_u64) {
                    seen[node].push((t, v));
                }
            }
        }
    }
    (text, seen)
}

#[test]
fn each_node_reads_its_own_clock_and_its_timers_run_at_its_rate() {
    let (_, seen) = run(config(&[0, 250_000, -500_000], vec![]));
    // Perfect: every 100 ms of true time, reading the true time.
    assert_eq!(
        seen[0][..3],
        [(100_000, 100_000), (200_000, 200_000), (300_000, 300_000)]
    );
    // 25% fast: 100 ms of its clock pass in 80 ms of true time.
    assert_eq!(seen[1][..2], [(80_000, 100_000), (160_000, 200_000)]);
    assert_eq!(seen[1].len(), 12);
    // Half speed: every 200 ms of true time.
    assert_eq!(seen[2][..2], [(200_000, 100_000), (400_000, 200_000)]);
    assert_eq!(seen[2].len(), 5);
}

#[test]
fn a_jump_moves_the_reading_not_the_pending_timer_and_drift_can_change() {
    let faults = vec![
        (
            150_000,
            Fault::ClockJump {
                node: 0,
                by_ms: -120.0,
            },
        ),
        (
            250_000,
            Fault::ClockJump {
                node: 1,
                by_ms: 30.5,
            },
        ),
        (
            500_000,
            Fault::ClockDrift {
                node: 1,
                drift_ppm: 1_000_000 - 100_000,
            },
        ),
    ];
    let (_, seen) = run(config(&[0, 0], faults));
    // Node 0 jumped back 120 ms at 150 ms: its timer still fires at 200 ms of true time,
    // reading 80 ms (its clock went backwards between two reports).
    assert_eq!(
        seen[0][..3],
        [(100_000, 100_000), (200_000, 80_000), (300_000, 180_000)]
    );
    assert_eq!(seen[1][2], (300_000, 330_500));
    // From 500 ms on node 1 runs at 1.9: 100 ms of its clock in 52.632 ms of true time.
    assert_eq!(seen[1][4], (500_000, 530_500));
    assert_eq!(seen[1][5], (552_632, 630_500));
}

#[test]
fn a_drifting_run_is_deterministic_and_replays_and_a_wrong_clock_diverges() {
    let faults = || {
        vec![(
            330_000,
            Fault::ClockJump {
                node: 1,
                by_ms: -50.0,
            },
        )]
    };
    let (text, _) = run(config(&[1000, -3000, 0], faults()));
    assert_eq!(text, run(config(&[1000, -3000, 0], faults())).0);
    assert!(text
        .lines()
        .next()
        .unwrap()
        .contains(r#""clock":{"drift_ppm":-3000}"#));
    assert!(!text
        .lines()
        .next()
        .unwrap()
        .contains(r#""name":"n2","client":false,"clock""#));
    let trace = Trace::parse(&text).unwrap();
    let summary = replay::<Ticker>(&100_000, &trace).expect("a drifting run replays");
    assert!(summary.steps > 20);
    // The same trace with another drift in its header: timers land elsewhere.
    let tampered = text.replacen(r#""drift_ppm":1000"#, r#""drift_ppm":1001"#, 1);
    let div = replay::<Ticker>(&100_000, &Trace::parse(&tampered).unwrap()).unwrap_err();
    assert_eq!(div.node, 0);
    // ...and without its jump: node 1 reads another time.
    let jumpless: String = text
        .lines()
        .filter(|l| !l.contains("clock_jump"))
        .map(|l| format!("{l}\n"))
        .collect();
    let div = replay::<Ticker>(&100_000, &Trace::parse(&jumpless).unwrap()).unwrap_err();
    assert_eq!(div.node, 1);
}
