//! The run loop: [`Sim`] owns the world, the harness and the checkers, pops events in order,
//! and guards every event against panics of harness and checker code (node steps guard their
//! own, in [`crate::engine`]), so that every run ends with a verdict and a result record.

use crate::checker::{Checker, Failure};
use crate::engine::{RunResult, SimConfig, StepIn, World};
use crate::harness::Harness;
use crate::node::{Node, NodeId};
use crate::panics::catch;
use crate::queue::Event;
use crate::trace::{NodeSpec, Record, TraceSink, Verdict};
use std::cmp::Reverse;

/// What the engine was doing outside node steps, to describe a panic of the harness or a
/// checker.
#[derive(Clone, Copy)]
enum Phase {
    Start,
    Deliver(NodeId),
    Timer(NodeId),
    Sync(NodeId),
    Wake,
    Fault,
    Finish,
}

impl Phase {
    fn describe(self, specs: &[NodeSpec]) -> String {
        let name = |id: NodeId| specs.get(id).map_or("?", |s| s.name.as_str()).to_string();
        match self {
            Phase::Start => "the start of the run".into(),
            Phase::Deliver(to) => format!("a delivery to {}", name(to)),
            Phase::Timer(node) => format!("a timer of {}", name(node)),
            Phase::Sync(node) => format!("a sync of {}", name(node)),
            Phase::Wake => "a wake-up of the harness".into(),
            Phase::Fault => "a fault".into(),
            Phase::Finish => "the end-of-run checks".into(),
        }
    }
}

/// How many events may share one virtual time before the run is called a livelock.
pub const MAX_EVENTS_AT_ONE_TIME: u64 = 1_000_000;

/// One run: the world, its harness and its checkers.
pub struct Sim<N: Node, H: Harness<N>> {
    world: World<N>,
    harness: H,
    checkers: Vec<Box<dyn Checker<N>>>,
    /// What the run is doing, to describe a panic of harness or checker code.
    phase: Phase,
    /// Branch points still ahead, next first.
    branches: std::collections::VecDeque<crate::engine::Branch>,
}

impl<N: Node, H: Harness<N>> Sim<N, H> {
    /// Sets up a run; nothing happens until [`Sim::run`].
    pub fn new(mut cfg: SimConfig, node_config: N::Config, harness: H) -> Self {
        cfg.branches.sort_by_key(|b| b.at_event);
        let branches = std::mem::take(&mut cfg.branches).into();
        Sim {
            world: World::new(cfg, node_config),
            harness,
            checkers: Vec::new(),
            phase: Phase::Start,
            branches,
        }
    }
    /// Add an invariant checker.
    pub fn add_checker(&mut self, checker: Box<dyn Checker<N>>) {
        self.checkers.push(checker);
    }
    /// Write a trace of the run to `sink`, starting with `header`.
    pub fn set_trace(&mut self, mut sink: TraceSink, header: Record) {
        sink.write(&header);
        self.world.trace = Some(sink);
    }
    /// The world (for setup before the run).
    pub fn world(&mut self) -> &mut World<N> {
        &mut self.world
    }
    /// The harness, e.g. to read what it recorded after the run.
    pub fn harness(&self) -> &H {
        &self.harness
    }

    /// Deliver pending observations to checkers, then to the harness, until none are left.
    fn drain_observations(&mut self) {
        // Disk changes first (a crash, a lost disk: what a node will restart from), then
        // durable writes: checkers see what a step made durable before what it reported.
        for (node, change) in std::mem::take(&mut self.world.disk_changes) {
            let now = self.world.now;
            let durable = self.world.durable(node);
            let mut failed = None;
            for checker in &mut self.checkers {
                if let Err(f) = checker.on_disk(now, node, change, durable) {
                    failed.get_or_insert(f);
                }
            }
            if let Some(f) = failed {
                self.world.fail(f);
            }
        }
        while let Some(node) = self.world.persisted.pop() {
            let now = self.world.now;
            let durable = self.world.durable(node);
            let mut failed = None;
            for checker in &mut self.checkers {
                if let Err(f) = checker.on_persist(now, node, durable) {
                    failed.get_or_insert(f);
                }
            }
            if let Some(f) = failed {
                self.world.fail(f);
            }
        }
        while let Some((node, obs)) = self.world.pending.pop_front() {
            for checker in &mut self.checkers {
                if let Err(f) = checker.on_observation(self.world.now, node, &obs) {
                    self.world.fail(f);
                }
            }
            self.harness.on_observation(&mut self.world, node, &obs);
        }
    }

    /// Runs `f`; a panic in it (the harness, a checker, or the engine itself: node steps catch
    /// their own) becomes a "panic" violation and halts the run. Any panic ends the run, so one
    /// guard covers the whole event loop (`self.phase` says where it was), which costs less
    /// than one per event.
    fn guarded(&mut self, f: impl FnOnce(&mut Self)) {
        if let Err(panic) = catch(|| f(self)) {
            let detail = format!(
                "harness or checker code {panic} (during {})",
                self.phase.describe(&self.world.specs)
            );
            self.world.panicked(vec![], detail, panic);
        }
    }

    /// Runs until the deadline, an empty queue, a stop or a violation (a panic is one). Returns
    /// the result and the trace sink's outcome; the trace always ends with a result record.
    pub fn run(mut self) -> (RunResult, H, std::io::Result<()>) {
        self.guarded(|sim| {
            for id in 0..sim.world.len() {
                sim.world.step(id, StepIn::Start);
            }
            sim.harness.start(&mut sim.world);
            sim.drain_observations();
            sim.event_loop();
        });
        self.finish()
    }

    /// Pops and handles events until the deadline, an empty queue, a stop or a violation.
    fn event_loop(&mut self) {
        let mut stalled = 0u64;
        while self.world.failure.is_none() && !self.world.stopped {
            let Some(&Reverse((at, _, slot))) = self.world.queue.peek() else {
                break;
            };
            if at > self.world.deadline {
                self.world.now = self.world.deadline;
                break;
            }
            self.world.queue.pop();
            while self
                .branches
                .front()
                .is_some_and(|b| b.at_event <= self.world.event_no)
            {
                let b = self.branches.pop_front().expect("checked");
                self.world.branch(b.seed);
            }
            if at == self.world.now {
                stalled += 1;
                if stalled > MAX_EVENTS_AT_ONE_TIME {
                    self.world.fail(Failure::new(
                        "time passes",
                        vec![],
                        format!("{MAX_EVENTS_AT_ONE_TIME} events happened at one virtual time: a livelock (nodes or the harness react to each other with no delay)"),
                    ));
                    break;
                }
            } else {
                stalled = 0;
            }
            self.world.now = at;
            if at >= self.world.hold_deadline {
                self.world.release_due_holds();
            }
            let event = self.world.slab.take(slot);
            match event {
                Event::Deliver { from, to, id, msg } => {
                    self.phase = Phase::Deliver(to);
                    self.world.deliver(from, to, id, msg)
                }
                Event::Timer { node, inc, id, tag } => {
                    self.phase = Phase::Timer(node);
                    self.world.fire_timer(node, inc, id, tag)
                }
                Event::Sync { node, batch } => {
                    self.phase = Phase::Sync(node);
                    self.world.sync_done(node, batch)
                }
                Event::Wake { tag } => {
                    self.phase = Phase::Wake;
                    self.harness.on_wake(&mut self.world, tag)
                }
                Event::Fault { fault, reactive } => {
                    self.phase = Phase::Fault;
                    let fault = *fault;
                    for checker in &mut self.checkers {
                        if let Err(f) = checker.on_fault(self.world.now, &fault) {
                            self.world.fail(f);
                        }
                    }
                    self.world.apply_fault_from(fault, reactive);
                }
            }
            self.drain_observations();
        }
    }

    /// End-of-run checks, the verdict and the result record.
    fn finish(mut self) -> (RunResult, H, std::io::Result<()>) {
        if self.world.failure.is_none() {
            self.phase = Phase::Finish;
            self.guarded(|sim| {
                if let Err(f) = sim.harness.finish(&mut sim.world) {
                    sim.world.fail(f);
                }
                sim.drain_observations();
                if sim.world.failure.is_some() {
                    return;
                }
                let now = sim.world.now;
                for checker in &mut sim.checkers {
                    match checker.conclude(now) {
                        Ok(None) => {}
                        Ok(Some(what)) => sim.world.inconclusive(checker.name(), what),
                        Err(f) => {
                            sim.world.fail(f);
                            break;
                        }
                    }
                }
            });
        }
        let world = &mut self.world;
        let mut also = Vec::new();
        match (world.failure.is_some(), world.deferred.take()) {
            (false, Some(d)) => world.failure = Some(d),
            (true, Some(d)) => also.push(d),
            _ => {}
        }
        let result = RunResult {
            seed: world.seed,
            verdict: Verdict::of(world.failure.as_ref(), &world.undecided),
            violation: world.failure.clone(),
            unknown: world.undecided.clone(),
            also,
            end_time: world.now,
            stats: world.stats(),
            marks: std::mem::take(&mut world.marks),
            reactive_faults: std::mem::take(&mut world.reactive_faults),
        };
        let io = match world.trace.take() {
            Some(mut sink) => {
                sink.write(&Record::Result {
                    verdict: result.verdict,
                    violation: result.violation.clone(),
                    unknown: result.unknown.clone(),
                    also: result.also.clone(),
                    end_time: result.end_time,
                    stats: result.stats.clone(),
                });
                sink.finish()
            }
            None => Ok(()),
        };
        (result, self.harness, io)
    }
}
