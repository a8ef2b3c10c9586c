//! Engine throughput: events per second of the ping-pong example on a large run, against a bare
//! loop that only pushes and pops a binary heap and draws from ChaCha, in the same process.
//!
//! Run: `cargo bench -p sim --bench engine` (optionally `-- NODES EVENTS`).

use rand::Rng;
use sim::example::{PingNode, PingPongConfig, PongCountChecker};
use sim::rng::{stream, Purpose};
use sim::{Harness, NetworkConfig, NodeSpec, Sim, SimConfig, World};
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

fn engine_run(nodes: usize, virtual_s: u64) -> (u64, f64, usize) {
    let cfg = SimConfig {
        seed: 1,
        nodes: (0..nodes)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                client: false,
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
fn bare_loop(queue_len: usize, events: u64) -> f64 {
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let nodes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let virtual_s: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rounds = 5;
    // Warm up once; then alternate the two loops and keep each one's best round, so a busy
    // machine (other processes on the two cores) disturbs the ratio as little as possible.
    engine_run(nodes, 1);
    let (mut best_engine, mut best_bare) = (f64::MAX, f64::MAX);
    let mut events = 0;
    let mut queue = 0;
    for _ in 0..rounds {
        let (e, secs, q) = engine_run(nodes, virtual_s);
        events = e;
        queue = q;
        best_engine = best_engine.min(secs);
        best_bare = best_bare.min(bare_loop(queue, events));
    }
    let engine_rate = events as f64 / best_engine;
    let bare_rate = events as f64 / best_bare;
    println!(
        "engine: {events} events ({nodes} ping-pong nodes, {virtual_s} s virtual, lossy network) in {best_engine:.3} s = {:.2} M events/s (best of {rounds})",
        engine_rate / 1e6
    );
    println!(
        "bare heap+ChaCha loop: {events} pops/pushes/draws on a queue of {queue} (the engine's mean) in {best_bare:.3} s = {:.2} M events/s (best of {rounds})",
        bare_rate / 1e6
    );
    println!("ratio engine/bare: {:.2}", engine_rate / bare_rate);
}
