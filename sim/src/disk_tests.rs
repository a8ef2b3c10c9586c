//! Tests of the realistic disk (`disk.rs`) on a small node: every node counts the requests it
//! answered in durable state and answers each request with a reply that vouches for the
//! count (its `durable_lag` compares the in-memory count with what the reply vouches for).

use crate::disk::DiskConfig;
use crate::engine::{RunResult, Sim, SimConfig};
use crate::engine_tests::Buf;
use crate::faults::Fault;
use crate::harness::Idle;
use crate::network::NetworkConfig;
use crate::node::{Ctx, Durable, Message, Node, NodeId, TimerId};
use crate::replay::replay;
use crate::trace::{NodeSpec, Record, Trace, TraceSink, Verdict};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Req,
    Ack(u64),
}
impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Req => "Req",
            Msg::Ack(_) => "Ack",
        }
    }
    fn is_reply(&self) -> bool {
        matches!(self, Msg::Ack(_))
    }
    fn size_bytes(&self) -> usize {
        8
    }
}

/// The durable count of answered requests; a write sets it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Count(u64);
impl Durable for Count {
    type Write = u64;
    fn apply(&mut self, w: &u64) {
        self.0 = *w;
    }
    fn byte_size(&self) -> usize {
        8
    }
}

/// `sync_first`: the correct node (persist, sync, reply); false: it replies before the sync.
#[derive(Clone, Copy)]
struct Cfg {
    sync_first: bool,
}

struct Counter {
    count: u64,
    peers: usize,
    sync_first: bool,
}

impl Node for Counter {
    type Config = Cfg;
    type Msg = Msg;
    type Input = ();
    type Reply = ();
    type Obs = u64;
    type Durable = Count;
    fn start(cfg: &Cfg, ctx: &mut Ctx<'_, Self>, d: &Count) -> Self {
        ctx.set_timer(1_000, 0);
        Counter {
            count: d.0,
            peers: 3,
            sync_first: cfg.sync_first,
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        if msg == Msg::Req {
            self.count += 1;
            ctx.persist(self.count);
            if self.sync_first {
                ctx.sync();
                ctx.send(from, Msg::Ack(self.count));
            } else {
                ctx.send(from, Msg::Ack(self.count));
                ctx.sync();
            }
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: TimerId, _: u64) {
        let to = (ctx.id() + 1) % self.peers;
        ctx.send(to, Msg::Req);
        ctx.set_timer(3_000, 0);
    }
    fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    fn durable_lag(&self, d: &Count) -> Option<String> {
        (d.0 != self.count).then(|| format!("its count {} was not durable ({})", self.count, d.0))
    }
}

fn config(seed: u64, disk: Option<DiskConfig>, faults: Vec<(u64, Fault)>) -> SimConfig {
    SimConfig {
        disk,
        seed,
        nodes: (0..3)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                client: false,
                clock: Default::default(),
            })
            .collect(),
        network: NetworkConfig {
            latency_ms: [0.5, 2.0],
            ..NetworkConfig::default()
        },
        deadline: 400_000,
        faults,
        reactive: None,
        branches: vec![],
    }
}

fn realistic() -> Option<DiskConfig> {
    Some(DiskConfig {
        latency_us: (500, 5_000),
        torn: 0.0,
    })
}

fn crashes() -> Vec<(u64, Fault)> {
    (1..12u64)
        .flat_map(|i| {
            let n = (i % 3) as usize;
            [
                (i * 30_000 + 1_234, Fault::Crash(n)),
                (i * 30_000 + 9_000, Fault::Restart(n)),
            ]
        })
        .collect()
}

fn run(cfg: SimConfig, sync_first: bool) -> (RunResult, String) {
    let buf = Buf::default();
    let header = Record::Header {
        format: crate::trace::FORMAT_VERSION,
        seed: cfg.seed,
        scenario: serde_json::json!({"test": "disk"}),
        source: "test".into(),
        nodes: cfg.nodes.clone(),
        network: cfg.network.clone(),
        drawn: serde_json::Value::Null,
        disk: cfg.disk.clone(),
    };
    let mut sim = Sim::<Counter, Idle>::new(cfg, Cfg { sync_first }, Idle);
    sim.set_trace(TraceSink::new(Box::new(buf.clone())), header);
    let (result, _, io) = sim.run();
    io.unwrap();
    let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
    (result, text)
}

#[test]
fn the_persister_shows_no_syncs_and_makes_writes_durable_at_once() {
    let (r, text) = run(config(3, None, crashes()), true);
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.violation);
    assert!(r.stats.steps > 100);
    assert!(!text.contains("\"sync\""), "the Persister traces no syncs");
    assert!(!text.contains("\"type\":\"disk\""));
    assert_eq!(
        r.stats.syncs + r.stats.writes_lost + r.stats.dropped_unsynced,
        0
    );
}

#[test]
fn a_sync_holds_the_reply_back_and_a_crash_loses_unsynced_writes() {
    let (r, text) = run(config(3, realistic(), crashes()), true);
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.violation);
    assert!(r.stats.syncs > 50, "{:?}", r.stats);
    assert!(r.stats.writes_lost > 0, "crashes find unsynced writes");
    assert!(
        r.stats.dropped_unsynced > 0,
        "replies behind an abandoned sync never leave"
    );
    assert!(text.contains("{\"sync\":true}"));
    assert!(text.contains("\"disk\":{\"crash\":{\"kept\":"));
    // Every Ack leaves at least the disk's least latency after the Req arrived.
    let trace = Trace::parse(&text).unwrap();
    let mut sent_at = std::collections::BTreeMap::new();
    let mut checked = 0;
    for (_, rec) in &trace.records {
        if let Record::Step { t, input, out, .. } = rec {
            for o in out {
                if let Some(id) = o.pointer("/send/id").and_then(|v| v.as_u64()) {
                    sent_at.insert(id, *t);
                }
            }
            if let crate::trace::StepInput::Deliver { id, msg, .. } = input {
                if msg.get("Ack").is_some() {
                    assert!(*t >= sent_at[id] + 500, "an Ack overtook its sync");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50);
}

#[test]
fn a_realistic_run_replays_and_is_deterministic() {
    let (r1, t1) = run(config(11, realistic(), crashes()), true);
    let (r2, t2) = run(config(11, realistic(), crashes()), true);
    assert_eq!(t1, t2);
    assert_eq!(r1.stats, r2.stats);
    let trace = Trace::parse(&t1).unwrap();
    let summary = replay::<Counter>(&Cfg { sync_first: true }, &trace).unwrap();
    assert_eq!(summary.steps, r1.stats.steps);
    // A crash record that says it kept another number of writes is a divergence: the
    // replayed node would restart from another count.
    let tampered = t1.replacen(
        "{\"crash\":{\"kept\":0,\"lost\":1}",
        "{\"crash\":{\"kept\":1,\"lost\":1}",
        1,
    );
    assert_ne!(tampered, t1, "the run has a crash that lost a write");
    let trace = Trace::parse(&tampered).unwrap();
    assert!(replay::<Counter>(&Cfg { sync_first: true }, &trace).is_err());
}

#[test]
fn a_reply_before_its_sync_fails_persisted_before_responding() {
    let (r, _) = run(config(5, realistic(), vec![]), false);
    assert_eq!(r.verdict, Verdict::Violation);
    let v = r.violation.unwrap();
    assert_eq!(v.failure.property, "persisted before responding");
    assert!(
        v.failure.detail.contains("not synced"),
        "{}",
        v.failure.detail
    );
    // With the Persister the same node is correct: its write is durable at once.
    let (r, _) = run(config(5, None, vec![]), false);
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.violation);
}

#[test]
fn a_lost_disk_comes_back_empty() {
    let faults = vec![(100_000, Fault::LoseDisk(1)), (120_000, Fault::Restart(1))];
    let (r, text) = run(config(2, realistic(), faults), true);
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.violation);
    let trace = Trace::parse(&text).unwrap();
    replay::<Counter>(&Cfg { sync_first: true }, &trace).unwrap();
    // The first Ack n1 sends after its restart counts from 1 again.
    let restarted = trace
        .records
        .iter()
        .position(|(_, r)| {
            matches!(
                r,
                Record::Fault {
                    fault: Fault::Restart(1),
                    ..
                }
            )
        })
        .unwrap();
    let first_ack = trace.records[restarted..]
        .iter()
        .find_map(|(_, r)| match r {
            Record::Step { node: 1, out, .. } => out
                .iter()
                .find_map(|o| o.pointer("/send/msg/Ack").and_then(|v| v.as_u64())),
            _ => None,
        });
    assert_eq!(first_ack, Some(1));
}
