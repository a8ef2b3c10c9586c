#![forbid(unsafe_code)]
//! `sim`: a deterministic discrete-event simulation engine.
//!
//! One thread owns virtual time, seeded randomness and the event queue. Nodes are step-function
//! state machines ([`Node`]) that see the world only through a [`Ctx`]. A [`Harness`] plays the
//! test driver, [`Checker`]s watch invariants, and every run can be written as a JSON Lines
//! trace ([`trace`]) and replayed ([`replay`]). The engine knows nothing of Raft.

/// Engine throughput against a bare heap-plus-ChaCha loop (benchmarks only).
pub mod bench_engine;
pub mod checker;
pub mod clock;
pub mod clock_draw;
#[cfg(test)]
mod clock_tests;
pub mod engine;
#[cfg(test)]
mod engine_tests;
pub mod example;
pub mod faults;
pub mod harness;
pub mod linearizability;
pub mod network;
pub mod node;
#[cfg(test)]
mod outcome_tests;
pub mod panics;
mod queue;
pub mod reactive;
#[cfg(test)]
mod reactive_tests;
pub mod replay;
pub mod rng;
mod run;
pub mod stats;
pub mod swarm;
pub mod trace;
mod world_faults;
mod world_react;

pub use checker::{Checker, Failure, Undecided, Violation};
pub use clock::{ClockSpec, NodeClock};
pub use clock_draw::ClockProfile;
pub use engine::{Branch, MarkStat, RunResult, Sim, SimConfig, World};
pub use faults::{Fault, FaultProfile, ScheduledFault};
pub use harness::{Harness, Idle};
pub use network::{ms_to_us, NetworkConfig};
pub use node::{Ctx, Durable, Mark, Message, Node, NodeId, Output, Payload, Time, TimerId};
pub use panics::Panic;
pub use reactive::{MarkRuleProfile, Reactive, ReactiveProfile};
pub use stats::Stats;
pub use swarm::{Knob, SwarmProfile};
pub use trace::{NodeSpec, Record, Verdict};

/// Formats virtual µs as seconds with millisecond precision, e.g. `12.345s`.
pub fn fmt_time(t: Time) -> String {
    format!("{}.{:03}s", t / 1_000_000, (t / 1000) % 1000)
}
