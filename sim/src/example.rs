//! A small example system for the engine's own tests, benchmarks and the `pingpong` scenario
//! kind: every node pings a random peer on a timer, peers answer with a pong, and each node
//! keeps a durable count of pongs. A checker verifies the count; a `bug` flag breaks it so the
//! failure path can be tested, `panic_at_pong` makes a node panic (the panic path), and a
//! checker budget makes the checker give up (the "unknown" path).

use crate::checker::{Checker, Failure};
use crate::engine::World;
use crate::harness::Harness;
use crate::node::{Ctx, Durable, Message, Node, NodeId, Time, TimerId};
use indexmap::IndexSet;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings shared by all ping-pong nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingPongConfig {
    /// Nodes 0..nodes take part.
    pub nodes: usize,
    /// Mean time between pings of one node, µs (each gap is drawn in [interval/2, 3*interval/2]).
    pub interval_us: Time,
    /// Count every pong twice: a deliberate bug the pong-count checker must catch.
    #[serde(default)]
    pub bug: bool,
    /// A node panics when it is about to count its N-th pong: a deliberate crash of the code
    /// under test, which the engine must turn into a "panic" violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_at_pong: Option<u64>,
}

/// Ping-pong messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PingMsg {
    Ping { seq: u64 },
    Pong { seq: u64 },
}

impl Message for PingMsg {
    fn kind(&self) -> &'static str {
        match self {
            PingMsg::Ping { .. } => "Ping",
            PingMsg::Pong { .. } => "Pong",
        }
    }
    fn is_reply(&self) -> bool {
        matches!(self, PingMsg::Pong { .. })
    }
    fn size_bytes(&self) -> usize {
        16
    }
}

/// What a ping-pong node reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PingObs {
    PingSent { to: NodeId, seq: u64 },
    PongReceived { from: NodeId, seq: u64, pongs: u64 },
}

/// Durable state: pings sent (so sequence numbers never repeat) and pongs counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PingDurable {
    pub pings: u64,
    pub pongs: u64,
}

/// A durable write of the ping-pong node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PingWrite {
    Pings(u64),
    Pongs(u64),
}

impl Durable for PingDurable {
    type Write = PingWrite;
    fn apply(&mut self, w: &PingWrite) {
        match *w {
            PingWrite::Pings(n) => self.pings = n,
            PingWrite::Pongs(n) => self.pongs = n,
        }
    }
    fn byte_size(&self) -> usize {
        16
    }
}

/// One ping-pong node.
pub struct PingNode {
    bug: bool,
    panic_at_pong: Option<u64>,
    nodes: usize,
    interval: Time,
    state: PingDurable,
}

impl PingNode {
    fn arm(&self, ctx: &mut Ctx<'_, Self>) -> TimerId {
        let gap = ctx
            .rng()
            .random_range(self.interval / 2..=self.interval * 3 / 2);
        ctx.set_timer(gap, 0)
    }
    /// Pongs counted so far.
    pub fn pongs(&self) -> u64 {
        self.state.pongs
    }
}

impl Node for PingNode {
    type Config = PingPongConfig;
    type Msg = PingMsg;
    type Input = ();
    type Reply = u64;
    type Obs = PingObs;
    type Durable = PingDurable;

    fn start(cfg: &PingPongConfig, ctx: &mut Ctx<'_, Self>, durable: &PingDurable) -> Self {
        let node = PingNode {
            bug: cfg.bug,
            panic_at_pong: cfg.panic_at_pong,
            nodes: cfg.nodes,
            interval: cfg.interval_us.max(2),
            state: durable.clone(),
        };
        node.arm(ctx);
        node
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: PingMsg) {
        match msg {
            PingMsg::Ping { seq } => ctx.send(from, PingMsg::Pong { seq }),
            PingMsg::Pong { seq } => {
                if self.panic_at_pong == Some(self.state.pongs + 1) {
                    panic!(
                        "deliberate panic: node {} got pong {seq} from {from}",
                        ctx.id()
                    );
                }
                self.state.pongs += if self.bug { 2 } else { 1 };
                ctx.persist(PingWrite::Pongs(self.state.pongs));
                ctx.mark("pong");
                ctx.observe(PingObs::PongReceived {
                    from,
                    seq,
                    pongs: self.state.pongs,
                });
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _timer: TimerId, _tag: u64) {
        if self.nodes > 1 {
            let me = ctx.id();
            let to = (me + ctx.rng().random_range(1..self.nodes)) % self.nodes;
            let seq = self.state.pings;
            self.state.pings += 1;
            ctx.persist(PingWrite::Pings(self.state.pings));
            ctx.send(to, PingMsg::Ping { seq });
            ctx.observe(PingObs::PingSent { to, seq });
        }
        self.arm(ctx);
    }

    fn on_input(&mut self, _ctx: &mut Ctx<'_, Self>, _input: ()) -> u64 {
        self.state.pongs
    }
}

/// Checks that each node's pong count grows by exactly one per pong, and that every pong
/// answers a ping that node sent.
#[derive(Default)]
pub struct PongCountChecker {
    pongs: Vec<u64>,
    sent: IndexSet<(NodeId, u64)>,
    /// Check at most this many pongs; the rest are left undecided (a deliberately tiny budget,
    /// to exercise the "unknown" verdict).
    budget: Option<u64>,
    checked: u64,
    unchecked: u64,
}

impl PongCountChecker {
    /// A checker that checks at most `budget` pongs and reports the rest as undecided.
    pub fn with_budget(budget: Option<u64>) -> Self {
        PongCountChecker {
            budget,
            ..PongCountChecker::default()
        }
    }
}

impl Checker<PingNode> for PongCountChecker {
    fn name(&self) -> &'static str {
        "pong count"
    }
    fn on_observation(&mut self, _now: Time, node: NodeId, obs: &PingObs) -> Result<(), Failure> {
        if self.pongs.len() <= node {
            self.pongs.resize(node + 1, 0);
        }
        match *obs {
            PingObs::PingSent { seq, .. } => {
                self.sent.insert((node, seq));
            }
            PingObs::PongReceived { from, seq, pongs } => {
                if self.budget.is_some_and(|b| self.checked >= b) {
                    self.unchecked += 1;
                    return Ok(());
                }
                self.checked += 1;
                if !self.sent.contains(&(node, seq)) {
                    return Err(Failure::new(
                        "pong answers a ping",
                        vec![node, from],
                        format!("pong {seq} from {from} answers no ping of node {node}"),
                    ));
                }
                let expected = self.pongs[node] + 1;
                if pongs != expected {
                    return Err(Failure::new(
                        "pong count",
                        vec![node],
                        format!("node {node} counted {pongs} pongs, expected {expected}"),
                    ));
                }
                self.pongs[node] = pongs;
            }
        }
        Ok(())
    }
    fn conclude(&mut self, _now: Time) -> Result<Option<String>, Failure> {
        Ok((self.unchecked > 0).then(|| {
            format!(
                "budget of {} pongs spent, {} pongs not checked",
                self.checked, self.unchecked
            )
        }))
    }
}

/// Liveness at the end: every node that is up has counted at least one pong.
pub struct PongHarness;

impl Harness<PingNode> for PongHarness {
    fn start(&mut self, _world: &mut World<PingNode>) {}
    fn on_wake(&mut self, _world: &mut World<PingNode>, _tag: u64) {}
    fn finish(&mut self, world: &mut World<PingNode>) -> Result<(), Failure> {
        for id in 0..world.len() {
            if let Some(0) = world.input(id, ()) {
                return Err(Failure::new(
                    "liveness",
                    vec![id],
                    format!("node {id} never received a pong"),
                ));
            }
        }
        Ok(())
    }
}
