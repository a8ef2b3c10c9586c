//! The interpreter of the step language: threads of steps, run as a harness inside the
//! engine. Control flow, faults and counters live here; system steps are delegated to a
//! [`System`].

use super::env::{draw_span, Env};
use super::spec::{describe, Block, Expr, Step};
use rand::Rng;
use sim::network::ms_to_us;
use sim::{Failure, Harness, Node, NodeId, Time, World};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// What a step tells the interpreter.
#[derive(Debug)]
pub enum Flow {
    /// Done: go on with the next step.
    Next,
    /// Call me again after this many µs (the step's state is kept).
    Wait(Time),
    /// The run fails.
    Fail(Failure),
    /// Give up this attempt: the enclosing `attempts` retries (a term changed under a wait).
    Abort(String),
    /// A control step entered a nested block (its frame already moved past the step).
    Entered,
}

/// The steps one system (Raft, KV) adds to the language.
pub trait System<N: Node> {
    /// State of a system step that waits (kept between calls).
    type State;
    /// Run or continue a system step; `state` is None on the first call.
    fn exec(
        &mut self,
        world: &mut World<N>,
        env: &mut Env<'_>,
        step: &Step,
        state: &mut Option<Self::State>,
    ) -> Flow;
    /// A node reported something (after the checkers saw it).
    fn observe(
        &mut self,
        _world: &mut World<N>,
        _node: NodeId,
        _obs: &N::Obs,
    ) -> Result<(), Failure> {
        Ok(())
    }
    /// End-of-run checks after the steps finished.
    fn finish(&mut self, _world: &mut World<N>) -> Result<(), Failure> {
        Ok(())
    }
}

enum FrameKind {
    Block,
    Loop {
        times: Option<i64>,
        i: i64,
        var: Option<String>,
    },
    Attempt {
        left: u32,
        pause: Time,
    },
}

struct Frame {
    steps: Block,
    pc: usize,
    kind: FrameKind,
}

/// What a waiting control step is waiting for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Idle,
    Sleeping,
    Joining,
}

struct Thread<St> {
    frames: Vec<Frame>,
    vars: BTreeMap<String, i64>,
    state: Option<St>,
    builtin: Builtin,
    parent: Option<usize>,
    children: usize,
    /// Threads spawned without `wait`, for `join`.
    detached: Vec<usize>,
    alive: bool,
    /// Bumped at every wait, so a stale wake-up is ignored.
    generation: u32,
}

/// The step interpreter, a [`Harness`] for any node type with a [`System`].
pub struct Machine<N: Node, S: System<N>> {
    system: S,
    program: Block,
    servers: usize,
    threads: Vec<Thread<S::State>>,
    lists: BTreeMap<String, Vec<u64>>,
    marks: BTreeMap<String, (u64, u64)>,
    main_done: bool,
    _node: PhantomData<N>,
}

/// Lab assertions that check a value and leave the program able to go on (a Get's value, an
/// RPC or byte budget, a size bound, a term): their failure is recorded and the run goes on,
/// so that the generic checks, some of which judge only at the end (linearizability, replica
/// agreement, liveness after heal), have their say. A generic failure then is the run's
/// violation, with the lab assertion listed after it. Failures that leave the program unable
/// to go on (a missing leader, no agreement in time, a scenario error) still stop the run.
const GO_ON_AFTER: &[&str] = &[
    "get returns the latest value",
    "message count",
    "persisted size",
    "snapshot size",
    "term stability",
    "term agreement",
];

fn lets_the_run_go_on(property: &str) -> bool {
    GO_ON_AFTER.contains(&property)
}

/// How many steps a thread may run in one go before the interpreter calls it a runaway loop.
const STEPS_WITHOUT_TIME: u32 = 1_000_000;

fn tag(thread: usize, generation: u32) -> u64 {
    ((thread as u64) << 32) | u64::from(generation)
}

impl<N: Node, S: System<N>> Machine<N, S> {
    /// An interpreter for `program` over servers `0..servers`.
    pub fn new(system: S, program: Vec<Step>, servers: usize) -> Self {
        Machine {
            system,
            program: Arc::from(program),
            servers,
            threads: Vec::new(),
            lists: BTreeMap::new(),
            marks: BTreeMap::new(),
            main_done: false,
            _node: PhantomData,
        }
    }

    /// The system, e.g. to read what it recorded.
    pub fn system(&self) -> &S {
        &self.system
    }

    fn spawn(
        &mut self,
        world: &mut World<N>,
        steps: Block,
        vars: BTreeMap<String, i64>,
        parent: Option<usize>,
    ) {
        let id = self.threads.len();
        self.threads.push(Thread {
            frames: vec![Frame {
                steps,
                pc: 0,
                kind: FrameKind::Block,
            }],
            vars,
            state: None,
            builtin: Builtin::Idle,
            parent,
            children: 0,
            detached: Vec::new(),
            alive: true,
            generation: 0,
        });
        world.wake_after(0, tag(id, 0));
    }

    fn end_thread(&mut self, world: &mut World<N>, t: usize) {
        let th = &mut self.threads[t];
        if !th.alive {
            return;
        }
        th.alive = false;
        th.frames.clear();
        if t == 0 {
            self.main_done = true;
            world.stop();
        }
        if let Some(p) = th.parent {
            let parent = &mut self.threads[p];
            parent.children -= 1;
            if parent.children == 0 && parent.alive {
                parent.generation += 1;
                world.wake_after(0, tag(p, parent.generation));
            }
        }
    }

    /// Run thread `t` until it waits, fails or ends.
    fn run(&mut self, world: &mut World<N>, t: usize) {
        let mut budget = STEPS_WITHOUT_TIME;
        while self.threads[t].alive && !world.failed() {
            budget -= 1;
            if budget == 0 {
                world.fail(Failure::new(
                    "scenario",
                    vec![],
                    format!("thread {t} ran {STEPS_WITHOUT_TIME} steps without letting virtual time pass (a loop with no wait in it?)"),
                ));
                return;
            }
            let th = &mut self.threads[t];
            let Some(frame) = th.frames.last_mut() else {
                self.end_thread(world, t);
                return;
            };
            if frame.pc >= frame.steps.len() {
                match &mut frame.kind {
                    FrameKind::Loop { times, i, var } if times.is_none_or(|n| *i + 1 < n) => {
                        *i += 1;
                        frame.pc = 0;
                        if let Some(v) = var {
                            th.vars.insert(v.clone(), *i);
                        }
                    }
                    _ => {
                        th.frames.pop();
                    }
                }
                continue;
            }
            let steps = Arc::clone(&frame.steps);
            let pc = frame.pc;
            let flow = self.exec(world, t, &steps[pc]);
            let th = &mut self.threads[t];
            match flow {
                Flow::Next => {
                    th.state = None;
                    th.builtin = Builtin::Idle;
                    if let Some(f) = th.frames.last_mut() {
                        f.pc += 1;
                    }
                }
                Flow::Entered => {
                    th.state = None;
                    th.builtin = Builtin::Idle;
                }
                Flow::Wait(after) => {
                    th.generation += 1;
                    if after != Time::MAX {
                        world.wake_after(after, tag(t, th.generation));
                    }
                    return;
                }
                Flow::Fail(f) if lets_the_run_go_on(&f.property) => {
                    world.fail_later(f);
                    th.state = None;
                    th.builtin = Builtin::Idle;
                    if let Some(f) = th.frames.last_mut() {
                        f.pc += 1;
                    }
                }
                Flow::Fail(f) => {
                    world.fail(f);
                    return;
                }
                Flow::Abort(reason) => {
                    th.state = None;
                    th.builtin = Builtin::Idle;
                    while let Some(f) = th.frames.last_mut() {
                        if let FrameKind::Attempt { left, pause } = &mut f.kind {
                            if *left == 0 {
                                world.fail(Failure::new(
                                    "agreement",
                                    vec![],
                                    format!("every attempt was aborted; the last because {reason}"),
                                ));
                                return;
                            }
                            *left -= 1;
                            f.pc = 0;
                            let pause = *pause;
                            world.note(|| format!("attempt aborted ({reason}); retrying"));
                            th.generation += 1;
                            world.wake_after(pause, tag(t, th.generation));
                            return;
                        }
                        th.frames.pop();
                    }
                    world.fail(Failure::new(
                        "agreement",
                        vec![],
                        format!("aborted outside `attempts`: {reason}"),
                    ));
                    return;
                }
            }
        }
    }

    fn exec(&mut self, world: &mut World<N>, t: usize, step: &Step) -> Flow {
        let servers = self.servers;
        let th = &mut self.threads[t];
        let mut env = Env {
            vars: &mut th.vars,
            lists: &mut self.lists,
            servers,
        };
        macro_rules! tryf {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(f) => return Flow::Fail(f),
                }
            };
        }
        match step {
            Step::SleepMs(span) => {
                if th.builtin == Builtin::Sleeping {
                    return Flow::Next;
                }
                th.builtin = Builtin::Sleeping;
                Flow::Wait(draw_span(world, span))
            }
            Step::Loop(l) => {
                let times = match &l.times {
                    Some(e) => Some(tryf!(env.eval(world, e))),
                    None => None,
                };
                if times.is_none_or(|n| n > 0) {
                    if let Some(v) = &l.var {
                        th.vars.insert(v.clone(), 0);
                    }
                    self.push_after_next(
                        t,
                        Frame {
                            steps: Arc::clone(&l.steps),
                            pc: 0,
                            kind: FrameKind::Loop {
                                times,
                                i: 0,
                                var: l.var.clone(),
                            },
                        },
                    );
                    return Flow::Entered;
                }
                Flow::Next
            }
            Step::If(cond) => {
                let v = tryf!(env.eval(
                    world,
                    &Expr::Name(format!("${}", cond.var.trim_start_matches('$')))
                ));
                let mut holds = cond.below.is_none()
                    && cond.at_least.is_none()
                    && cond.equals.is_none()
                    && v != 0;
                if let Some(e) = &cond.below {
                    holds = v < tryf!(env.eval(world, e));
                }
                if let Some(e) = &cond.at_least {
                    holds = v >= tryf!(env.eval(world, e));
                }
                if let Some(e) = &cond.equals {
                    holds = v == tryf!(env.eval(world, e));
                }
                let steps = if holds { &cond.then } else { &cond.otherwise };
                self.push_after_next(
                    t,
                    Frame {
                        steps: Arc::clone(steps),
                        pc: 0,
                        kind: FrameKind::Block,
                    },
                );
                Flow::Entered
            }
            Step::Choose(choices) => {
                let total: f64 = choices.iter().map(|c| c.weight).sum();
                let mut x = world.rng().random_range(0.0..total);
                let pick = choices
                    .iter()
                    .find(|c| {
                        x -= c.weight;
                        x < 0.0
                    })
                    .unwrap_or(&choices[choices.len() - 1]);
                self.push_after_next(
                    t,
                    Frame {
                        steps: Arc::clone(&pick.steps),
                        pc: 0,
                        kind: FrameKind::Block,
                    },
                );
                Flow::Entered
            }
            Step::Attempts(a) => {
                self.push_after_next(
                    t,
                    Frame {
                        steps: Arc::clone(&a.steps),
                        pc: 0,
                        kind: FrameKind::Attempt {
                            left: a.times.saturating_sub(1),
                            pause: ms_to_us(a.pause_ms),
                        },
                    },
                );
                Flow::Entered
            }
            Step::Spawn(sp) => {
                if th.builtin == Builtin::Joining {
                    return if th.children == 0 {
                        Flow::Next
                    } else {
                        Flow::Wait(Time::MAX)
                    };
                }
                let count = tryf!(env.eval(world, &sp.count)).max(0);
                let base = th.vars.clone();
                if sp.wait {
                    th.builtin = Builtin::Joining;
                    th.children += count as usize;
                }
                for i in 0..count {
                    let mut vars = base.clone();
                    vars.insert("thread".into(), i);
                    if !sp.wait {
                        let id = self.threads.len();
                        self.threads[t].detached.push(id);
                    }
                    self.spawn(world, Arc::clone(&sp.steps), vars, sp.wait.then_some(t));
                }
                if sp.wait && count > 0 {
                    Flow::Wait(Time::MAX)
                } else {
                    Flow::Next
                }
            }
            Step::StopThreads {} => {
                let mine: Vec<usize> = ancestors(&self.threads, t);
                for other in 0..self.threads.len() {
                    if !mine.contains(&other) {
                        self.end_thread(world, other);
                    }
                }
                Flow::Next
            }
            Step::Set(assignments) => {
                for (name, e) in assignments {
                    let v = tryf!(env.eval(world, e));
                    env.vars.insert(name.trim_start_matches('$').to_string(), v);
                }
                Flow::Next
            }
            Step::Pick(p) => {
                let picked = tryf!(env.select(world, &p.from))
                    .first()
                    .map_or(-1, |&i| i as i64);
                env.vars.insert(p.store.clone(), picked);
                Flow::Next
            }
            Step::Count(c) => {
                let n = tryf!(env.select(world, &c.of)).len() as i64;
                env.vars.insert(c.store.clone(), n);
                Flow::Next
            }
            Step::Note(text) => {
                world.note(|| text.clone());
                Flow::Next
            }
            Step::Now(name) => {
                env.vars.insert(
                    name.trim_start_matches('$').to_string(),
                    (world.now() / 1000) as i64,
                );
                Flow::Next
            }
            Step::Fail(reason) => {
                Flow::Fail(Failure::new("scenario expectation", vec![], reason.clone()))
            }
            Step::Abort(reason) => Flow::Abort(reason.clone()),
            Step::Join {} => {
                let detached = th.detached.clone();
                let pending = detached.iter().any(|&c| self.threads[c].alive);
                if pending {
                    Flow::Wait(10_000)
                } else {
                    Flow::Next
                }
            }
            Step::Crash(_)
            | Step::Restart(_)
            | Step::Disconnect(_)
            | Step::Connect(_)
            | Step::Partition(_)
            | Step::PartitionRandom { .. }
            | Step::Cut(_)
            | Step::Heal {}
            | Step::Clock(_)
            | Step::Network(_)
            | Step::LongReordering(_) => super::faults::exec(world, &mut env, step),
            Step::Mark(name) => {
                self.marks.insert(name.clone(), world.requests_sent());
                Flow::Next
            }
            Step::CheckRpcs(c) | Step::CheckBytes(c) => {
                let Some(&(rpcs0, bytes0)) = self.marks.get(&c.since) else {
                    return Flow::Fail(Failure::new(
                        "scenario",
                        vec![],
                        format!("no mark named {:?}", c.since),
                    ));
                };
                let (rpcs, bytes) = world.requests_sent();
                let (what, n) = if matches!(step, Step::CheckRpcs(_)) {
                    ("RPCs", rpcs - rpcs0)
                } else {
                    ("request bytes", bytes - bytes0)
                };
                let n = n as i64;
                if let Some(min) = &c.min {
                    let min = tryf!(env.eval(world, min));
                    if n < min {
                        return Flow::Fail(Failure::new(
                            "message count",
                            vec![],
                            format!(
                                "{n} {what} since mark {:?}, expected at least {min}",
                                c.since
                            ),
                        ));
                    }
                }
                if let Some(max) = &c.max {
                    let max = tryf!(env.eval(world, max));
                    if n > max {
                        return Flow::Fail(Failure::new(
                            "message count",
                            vec![],
                            format!(
                                "{n} {what} since mark {:?}, expected at most {max}",
                                c.since
                            ),
                        ));
                    }
                }
                world.note(|| format!("{n} {what} since mark {:?}", c.since));
                Flow::Next
            }
            _ => {
                let th = &mut self.threads[t];
                let mut env = Env {
                    vars: &mut th.vars,
                    lists: &mut self.lists,
                    servers,
                };
                self.system.exec(world, &mut env, step, &mut th.state)
            }
        }
    }

    /// Push a frame that runs after the current step: the current step is marked done first.
    fn push_after_next(&mut self, t: usize, frame: Frame) {
        let th = &mut self.threads[t];
        if let Some(cur) = th.frames.last_mut() {
            cur.pc += 1;
        }
        th.frames.push(frame);
    }
}

fn ancestors<St>(threads: &[Thread<St>], mut t: usize) -> Vec<usize> {
    let mut out = vec![t];
    while let Some(p) = threads[t].parent {
        out.push(p);
        t = p;
    }
    out
}

impl<N: Node, S: System<N>> Harness<N> for Machine<N, S> {
    fn start(&mut self, world: &mut World<N>) {
        let program = Arc::clone(&self.program);
        self.spawn(world, program, BTreeMap::new(), None);
    }

    fn on_wake(&mut self, world: &mut World<N>, tag: u64) {
        let (t, generation) = ((tag >> 32) as usize, tag as u32);
        match self.threads.get(t) {
            Some(th) if th.alive && th.generation == generation => self.run(world, t),
            _ => {}
        }
    }

    fn on_observation(&mut self, world: &mut World<N>, node: NodeId, obs: &N::Obs) {
        match self.system.observe(world, node, obs) {
            Ok(()) => {}
            Err(f) if lets_the_run_go_on(&f.property) => world.fail_later(f),
            Err(f) => world.fail(f),
        }
    }

    fn finish(&mut self, world: &mut World<N>) -> Result<(), Failure> {
        if !self.main_done && !self.program.is_empty() {
            let at = self
                .threads
                .first()
                .and_then(|th| th.frames.last())
                .map(|f| f.steps.get(f.pc).map(describe).unwrap_or_default());
            return Err(Failure::new(
                "liveness",
                vec![],
                format!(
                    "the steps did not finish by the end of the run; the main thread was at {}",
                    at.unwrap_or_default()
                ),
            ));
        }
        self.system.finish(world)
    }
}
