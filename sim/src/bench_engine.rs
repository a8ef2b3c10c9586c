//! Engine throughput against its floor, shared by `cargo bench -p sim --bench engine` and
//! `sim bench speed`: events per second of the ping-pong example on a large run, against a bare
//! loop that only pushes and pops a binary heap and draws from ChaCha, in the same process.
//! Times are wall clock: this measures the tool, it is not part of a simulation.

use crate::example::{PingNode, PingPongConfig, PongCountChecker};
use crate::rng::{stream, Purpose};
use crate::{Harness, NetworkConfig, NodeSpec, Sim, SimConfig, World};
use rand::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Instant;

/// Samples the engine's queue length every 10 ms of virtual time, so the bare loop can run on
/// a heap of the same size.
#[derive(Default)]
struct QueueSampler {
    samples: u64,
    total: u64,
}

impl Harness<PingNode> for QueueSampler {
    fn start(&mut self, world: &mut World<PingNode>) {
        world.wake_after(10_000, 0);
    }
    fn on_wake(&mut self, world: &mut World<PingNode>, _tag: u64) {
        self.samples += 1;
        self.total += world.queue_len() as u64;
        world.wake_after(10_000, 0);
    }
}

/// One engine run of `nodes` ping-pong nodes for `virtual_s` seconds on a lossy network:
/// (events, wall seconds, the mean queue length).
pub fn engine_run(nodes: usize, virtual_s: u64) -> (u64, f64, usize) {
    let cfg = SimConfig {
        seed: 1,
        nodes: (0..nodes)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                client: false,
                clock: Default::default(),
            })
            .collect(),
        network: NetworkConfig {
            latency_ms: [0.1, 5.0],
            drop_request: 0.01,
            drop_reply: 0.01,
            duplicate: 0.01,
            long_delay: None,
        },
        deadline: virtual_s * 1_000_000,
        faults: vec![],
        reactive: None,
        branches: vec![],
    };
    let node_cfg = PingPongConfig {
        nodes,
        interval_us: 1_000,
        bug: false,
        panic_at_pong: None,
    };
    let mut sim = Sim::new(cfg, node_cfg, QueueSampler::default());
    if std::env::var_os("BENCH_CHECKER").is_some() {
        sim.add_checker(Box::new(PongCountChecker::default()));
    }
    let start = Instant::now();
    let (result, sampler, _) = sim.run();
    let secs = start.elapsed().as_secs_f64();
    assert!(result.violation.is_none());
    // Every queue entry the engine handled: node steps, losses at delivery, faults; timer
    // entries of cancelled timers are not counted (ping-pong cancels none).
    let mean_queue = (sampler.total / sampler.samples.max(1)) as usize;
    (result.stats.events, secs, mean_queue)
}

/// The floor: pop the earliest entry, draw a delay from ChaCha, push a new entry, with the
/// same mean queue size the engine carried.
pub fn bare_loop(queue_len: usize, events: u64) -> f64 {
    let mut rng = stream(1, Purpose::Network);
    let mut heap: BinaryHeap<Reverse<(u64, u64, u64)>> = BinaryHeap::new();
    for i in 0..queue_len as u64 {
        heap.push(Reverse((rng.random_range(0..5_000), i, i)));
    }
    let start = Instant::now();
    let mut seq = queue_len as u64;
    for _ in 0..events {
        let Reverse((t, _, payload)) = heap.pop().unwrap();
        let delay: u64 = rng.random_range(100..=5_000);
        seq += 1;
        heap.push(Reverse((t + delay, seq, black_box(payload))));
    }
    black_box(&heap);
    start.elapsed().as_secs_f64()
}

/// The best rounds of [`engine_run`] and [`bare_loop`] on the same event count.
#[derive(Clone, Copy, Debug)]
pub struct EngineBench {
    /// Events of one engine run.
    pub events: u64,
    /// The engine's mean queue length (the bare loop's heap size).
    pub queue: usize,
    /// The fastest engine round, seconds.
    pub engine_secs: f64,
    /// The fastest bare-loop round, seconds.
    pub bare_secs: f64,
}

impl EngineBench {
    /// Engine events per second over the bare loop's: 1.0 would be an engine that costs
    /// nothing beyond its queue and its randomness.
    pub fn ratio(&self) -> f64 {
        self.bare_secs / self.engine_secs
    }
}

/// Warms up once, then alternates the two loops `rounds` times and keeps each one's best
/// round, so other processes on the machine disturb the ratio as little as possible.
pub fn engine_vs_bare(nodes: usize, virtual_s: u64, rounds: u32) -> EngineBench {
    engine_run(nodes, 1);
    let mut b = EngineBench {
        events: 0,
        queue: 0,
        engine_secs: f64::MAX,
        bare_secs: f64::MAX,
    };
    for _ in 0..rounds.max(1) {
        let (e, secs, q) = engine_run(nodes, virtual_s);
        b.events = e;
        b.queue = q;
        b.engine_secs = b.engine_secs.min(secs);
        b.bare_secs = b.bare_secs.min(bare_loop(q, e));
    }
    b
}
