//! The fault steps of the step language, in the 6.824 tester's terms (crash1, start1,
//! disconnect, connect, partitions, network reliability).

use super::env::Env;
use super::machine::Flow;
use super::spec::{NetSpec, Step};
use rand::Rng;
use sim::{Failure, Fault, NetworkConfig, Node, World};

/// Runs one fault step.
pub fn exec<N: Node>(world: &mut World<N>, env: &mut Env<'_>, step: &Step) -> Flow {
    let servers = env.servers;
    macro_rules! tryf {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(f) => return Flow::Fail(f),
            }
        };
    }
    match step {
        Step::Crash(sel) => {
            for i in tryf!(env.select(world, sel)) {
                world.apply_fault(Fault::Disconnect(i));
                world.apply_fault(Fault::Crash(i));
            }
            Flow::Next
        }
        Step::Restart(sel) => {
            for i in tryf!(env.select(world, sel)) {
                if world.is_up(i) {
                    // 6.824 start1 crashes a running server first, and crash1 disconnects.
                    world.apply_fault(Fault::Disconnect(i));
                    world.apply_fault(Fault::Crash(i));
                }
                world.apply_fault(Fault::Restart(i));
            }
            Flow::Next
        }
        Step::Disconnect(sel) => {
            for i in tryf!(env.select(world, sel)) {
                world.apply_fault(Fault::Disconnect(i));
            }
            Flow::Next
        }
        Step::Connect(sel) => {
            for i in tryf!(env.select(world, sel)) {
                world.apply_fault(Fault::Reconnect(i));
            }
            Flow::Next
        }
        Step::Partition(groups) => {
            let mut resolved = Vec::new();
            for g in groups {
                let mut ids = Vec::new();
                for s in g {
                    ids.extend(tryf!(env.select(world, s)));
                }
                resolved.push(ids);
            }
            world.apply_fault(Fault::Partition(resolved));
            Flow::Next
        }
        Step::PartitionRandom { groups } => {
            let k = (*groups).max(1) as usize;
            let mut resolved = vec![Vec::new(); k];
            for i in 0..servers {
                let g = world.rng().random_range(0..k);
                resolved[g].push(i);
            }
            resolved.retain(|g| !g.is_empty());
            world.apply_fault(Fault::Partition(resolved));
            Flow::Next
        }
        Step::Cut(c) => {
            let from = tryf!(env.select(world, &c.from));
            let to = tryf!(env.select(world, &c.to));
            for &f in &from {
                for &t in to.iter().filter(|t| **t != f) {
                    world.apply_fault(Fault::Cut { from: f, to: t });
                }
            }
            Flow::Next
        }
        Step::Heal {} => {
            world.apply_fault(Fault::Heal);
            Flow::Next
        }
        Step::Clock(c) => {
            for node in tryf!(env.select(world, &c.node)) {
                if let Some(drift_ppm) = c.drift_ppm {
                    world.apply_fault(Fault::ClockDrift { node, drift_ppm });
                }
                if let Some(by_ms) = c.jump_ms {
                    world.apply_fault(Fault::ClockJump { node, by_ms });
                }
            }
            Flow::Next
        }
        Step::Network(spec) => {
            let long = world.network().long_delay.clone();
            let cfg = match spec {
                NetSpec::Preset(p) if p == "reliable" => NetworkConfig {
                    long_delay: long,
                    ..NetworkConfig::labrpc_reliable()
                },
                NetSpec::Preset(p) if p == "unreliable" => NetworkConfig {
                    long_delay: long,
                    ..NetworkConfig::labrpc_unreliable()
                },
                NetSpec::Preset(p) => {
                    return Flow::Fail(Failure::new(
                        "scenario",
                        vec![],
                        format!("unknown network preset {p:?}"),
                    ))
                }
                NetSpec::Config(c) => c.clone(),
            };
            world.apply_fault(Fault::Network(cfg));
            Flow::Next
        }
        Step::LongReordering(on) => {
            let mut cfg = world.network().clone();
            cfg.long_delay = on.then(NetworkConfig::labrpc_long_reordering);
            world.apply_fault(Fault::Network(cfg));
            Flow::Next
        }
        _ => unreachable!("not a fault step"),
    }
}
