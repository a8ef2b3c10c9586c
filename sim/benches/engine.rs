//! Engine throughput: events per second of the ping-pong example on a large run, against a bare
//! loop that only pushes and pops a binary heap and draws from ChaCha, in the same process
//! (the loops live in `sim::bench_engine`, shared with `sim bench speed`).
//!
//! Run: `cargo bench -p sim --bench engine` (optionally `-- NODES EVENTS`).

use sim::bench_engine::engine_vs_bare;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let nodes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let virtual_s: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rounds = 5;
    let b = engine_vs_bare(nodes, virtual_s, rounds);
    let (events, queue) = (b.events, b.queue);
    let (best_engine, best_bare) = (b.engine_secs, b.bare_secs);
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
    println!("ratio engine/bare: {:.2}", b.ratio());
}
