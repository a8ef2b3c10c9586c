//! The scheduler: one thread, one event queue ordered by (virtual time, sequence number), the
//! nodes, the network and the fault injector. [`Sim::run`] drives a run to its end.

use crate::checker::{Failure, Undecided, Violation};
use crate::faults::Fault;
use crate::network::{ms_to_us, Connectivity, DropCause, Fate, NetworkConfig, NetworkModel};
use crate::node::{Ctx, Durable, Mark, Message, Node, NodeId, Output, Time, TimerId};
use crate::panics::{catch, Panic};
use crate::queue::{Event, QueueKey, Slab};
use crate::reactive::{
    capturing_hold, ActiveHold, Held, Reactive, ReactiveState, StepSummary, Strike,
};
use crate::rng::{stream, Purpose};
use crate::stats::Stats;
use crate::trace::{NodeSpec, Record, StepInput, TraceSink, Verdict};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

pub use crate::run::{Sim, MAX_EVENTS_AT_ONE_TIME};

/// Everything needed to set up a run, besides the nodes' own config.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: Vec<NodeSpec>,
    pub network: NetworkConfig,
    /// The run stops at this virtual time.
    pub deadline: Time,
    /// Faults at fixed times (from the scenario's schedule and its drawn fault profile).
    pub faults: Vec<(Time, Fault)>,
    /// Faults that react to what the nodes do (this seed's probabilities), if any.
    pub reactive: Option<Reactive>,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub seed: u64,
    /// Violation if a check failed, else unknown if a check could not decide, else ok.
    pub verdict: Verdict,
    pub violation: Option<Violation>,
    /// Checks that could not decide.
    pub unknown: Vec<Undecided>,
    pub end_time: Time,
    pub stats: Stats,
    /// How often each mark (name, context) was reported: the run's coverage.
    pub marks: Vec<(Mark, u64)>,
    /// The faults reactive rules made happen, in order, with their times: with the scheduled
    /// faults they are everything that was done to the cluster (a shrinker replays them as a
    /// fixed schedule).
    pub reactive_faults: Vec<(Time, Fault)>,
}

struct Slot<N: Node> {
    node: Option<N>,
    /// Bumped by every crash, so timers of a dead incarnation never fire in the next.
    inc: u32,
    durable: N::Durable,
    rng: ChaCha8Rng,
    next_timer: TimerId,
    /// Timers set and not yet fired or cancelled (a handful per node).
    live_timers: Vec<TimerId>,
}

pub(crate) enum StepIn<N: Node> {
    Start,
    Deliver { from: NodeId, id: u64, msg: N::Msg },
    Timer { id: TimerId, tag: u64 },
    Input(N::Input),
}

/// The simulated world as the harness sees it: nodes, network, clock and fault injection.
pub struct World<N: Node> {
    pub(crate) seed: u64,
    pub(crate) now: Time,
    pub(crate) deadline: Time,
    pub(crate) event_no: u64,
    seq: u64,
    next_msg_id: u64,
    node_config: N::Config,
    pub(crate) specs: Vec<NodeSpec>,
    slots: Vec<Slot<N>>,
    pub(crate) queue: BinaryHeap<QueueKey>,
    pub(crate) slab: Slab<N>,
    /// Messages sent per kind; few kinds, so a linear scan beats hashing.
    sent_by_kind: Vec<(&'static str, u64)>,
    network: NetworkConfig,
    model: NetworkModel,
    conn: Connectivity,
    net_rng: ChaCha8Rng,
    harness_rng: ChaCha8Rng,
    outputs: Vec<Output<N>>,
    pub(crate) pending: VecDeque<(NodeId, N::Obs)>,
    faults_applied: Vec<Fault>,
    stats: Stats,
    pub(crate) trace: Option<TraceSink>,
    pub(crate) failure: Option<Violation>,
    pub(crate) undecided: Vec<Undecided>,
    pub(crate) stopped: bool,
    /// Set by a panic: no node steps any more, the run ends after the current event.
    halted: bool,
    reactive: Option<ReactiveState>,
    /// Holds in force, by key, in the order they started.
    holds: Vec<(u64, ActiveHold)>,
    next_hold_key: u64,
    /// Messages held back, in the order they were sent.
    held: Vec<Held<N::Msg>>,
    /// The earliest deadline of a hold in force (`Time::MAX` if none).
    pub(crate) hold_deadline: Time,
    /// Marks reported so far with their counts; few distinct ones, so a sorted vector.
    pub(crate) marks: Vec<(Mark, u64)>,
    /// Marks of the current step (reused buffer).
    step_marks: Vec<&'static str>,
    pub(crate) reactive_faults: Vec<(Time, Fault)>,
}

impl<N: Node> World<N> {
    pub(crate) fn new(cfg: SimConfig, node_config: N::Config) -> Self {
        let n = cfg.nodes.len();
        let mut world = World {
            seed: cfg.seed,
            now: 0,
            deadline: cfg.deadline,
            event_no: 0,
            seq: 0,
            next_msg_id: 0,
            node_config,
            slots: (0..n)
                .map(|id| Slot {
                    node: None,
                    inc: 0,
                    durable: N::Durable::default(),
                    rng: stream(cfg.seed, Purpose::Node { id, incarnation: 0 }),
                    next_timer: 0,
                    live_timers: Vec::new(),
                })
                .collect(),
            specs: cfg.nodes,
            queue: BinaryHeap::new(),
            slab: Slab {
                entries: Vec::new(),
                free: Vec::new(),
            },
            sent_by_kind: Vec::new(),
            model: NetworkModel::new(&cfg.network),
            network: cfg.network,
            conn: Connectivity::new(n),
            net_rng: stream(cfg.seed, Purpose::Network),
            harness_rng: stream(cfg.seed, Purpose::Harness),
            outputs: Vec::new(),
            pending: VecDeque::new(),
            faults_applied: Vec::new(),
            stats: Stats::default(),
            trace: None,
            failure: None,
            undecided: Vec::new(),
            stopped: false,
            halted: false,
            reactive: cfg
                .reactive
                .map(|r| ReactiveState::new(r, stream(cfg.seed, Purpose::Reactive), n)),
            holds: Vec::new(),
            next_hold_key: 0,
            held: Vec::new(),
            hold_deadline: Time::MAX,
            marks: Vec::new(),
            step_marks: Vec::new(),
            reactive_faults: Vec::new(),
        };
        for (at, fault) in cfg.faults {
            world.push(
                at,
                Event::Fault {
                    fault: Box::new(fault),
                    reactive: false,
                },
            );
        }
        world
    }

    fn push(&mut self, at: Time, event: Event<N>) {
        debug_assert!(at >= self.now, "events are never scheduled in the past");
        self.seq += 1;
        let slot = self.slab.insert(event);
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    fn next_event_no(&mut self) -> u64 {
        self.event_no += 1;
        self.stats.events += 1;
        self.event_no
    }

    fn trace(&mut self, record: impl FnOnce() -> Record) {
        if let Some(sink) = &mut self.trace {
            sink.write(&record());
        }
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Current virtual time (µs).
    pub fn now(&self) -> Time {
        self.now
    }
    /// When the run will stop.
    pub fn deadline(&self) -> Time {
        self.deadline
    }
    /// The number of the latest event.
    pub fn event_no(&self) -> u64 {
        self.event_no
    }
    /// The harness's own random stream.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.harness_rng
    }
    /// How many nodes (servers and clients) there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// True if the run has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    /// Names and roles of the nodes.
    pub fn specs(&self) -> &[NodeSpec] {
        &self.specs
    }
    /// The node's current incarnation, or None if it is down.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.slots[id].node.as_ref()
    }
    /// Is the node up?
    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[id].node.is_some()
    }
    /// The node's incarnation number (number of crashes so far).
    pub fn incarnation(&self, id: NodeId) -> u32 {
        self.slots[id].inc
    }
    /// The node's durable state.
    pub fn durable(&self, id: NodeId) -> &N::Durable {
        &self.slots[id].durable
    }
    /// Is the node cut off from everyone (6.824 disconnect)?
    pub fn isolated(&self, id: NodeId) -> bool {
        self.conn.isolated(id)
    }
    /// Can a message from `from` reach `to` now?
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        self.conn.connected(from, to)
    }
    /// The current network model.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }
    /// Requests (non-reply messages) and their bytes sent so far, without copying the stats.
    pub fn requests_sent(&self) -> (u64, u64) {
        (self.stats.requests_sent, self.stats.request_bytes)
    }
    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.sent_by_kind = self
            .sent_by_kind
            .iter()
            .map(|(k, c)| (k.to_string(), *c))
            .collect();
        stats
    }
    /// Events waiting in the queue (including timers that were cancelled).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
    /// Faults applied so far, in order.
    pub fn faults_applied(&self) -> &[Fault] {
        &self.faults_applied
    }
    /// True once a check failed.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Ask for `Harness::on_wake(tag)` after `after` µs.
    pub fn wake_after(&mut self, after: Time, tag: u64) {
        self.push(self.now + after, Event::Wake { tag });
    }
    /// Stop the run after the current event (the verdict stays Ok unless a check failed).
    pub fn stop(&mut self) {
        self.stopped = true;
    }
    /// Fail the run: the harness found a property violated.
    pub fn fail(&mut self, failure: Failure) {
        self.fail_at(failure, None);
    }
    /// A check of the harness ran but could not decide (e.g. a search out of budget): unless
    /// a violation is found, the run's verdict is "unknown", never "ok".
    pub fn inconclusive(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.undecided.push(Undecided {
            check: check.into(),
            detail: detail.into(),
            time: self.now,
            event: self.event_no,
        });
    }
    fn fail_at(&mut self, failure: Failure, panic: Option<Panic>) {
        if self.failure.is_none() {
            self.failure = Some(Violation {
                failure,
                time: self.now,
                event: self.event_no,
                panic,
            });
        }
    }
    /// Code panicked: record it as a "panic" violation and stop all node steps.
    pub(crate) fn panicked(&mut self, nodes: Vec<NodeId>, detail: String, panic: Panic) {
        self.halted = true;
        self.fail_at(Failure::new("panic", nodes, detail), Some(panic));
    }
    /// Leave a remark in the trace (what the driver did or checked).
    pub fn note(&mut self, text: impl FnOnce() -> String) {
        // A note takes its event number whether or not the run is traced, so event numbers
        // (in violations, fuzz reports and summaries) are the same with and without a trace.
        let n = self.next_event_no();
        if self.trace.is_some() {
            let t = self.now;
            self.trace(|| Record::Note { n, t, text: text() });
        }
    }

    /// Call a node synchronously (the 6.824 tester's `Start`, a client request). None if the
    /// node is down.
    pub fn input(&mut self, id: NodeId, input: N::Input) -> Option<N::Reply> {
        self.slots[id].node.as_ref()?;
        self.step(id, StepIn::Input(input))
    }

    /// Apply a fault now. Crash drops the incarnation (its timers and volatile state); restart
    /// builds a new one from the durable state and runs its start step.
    pub fn apply_fault(&mut self, fault: Fault) {
        self.apply_fault_from(fault, false);
    }

    /// Apply a fault now; `reactive` if a reactive rule made it happen (the trace says so).
    pub(crate) fn apply_fault_from(&mut self, fault: Fault, reactive: bool) {
        let n = self.next_event_no();
        self.stats.faults += 1;
        let noop = match &fault {
            Fault::Crash(id) => {
                let slot = &mut self.slots[*id];
                let up = slot.node.take().is_some();
                if up {
                    slot.inc += 1;
                    slot.live_timers.clear();
                    self.stats.crashes += 1;
                }
                !up
            }
            Fault::Restart(id) => self.slots[*id].node.is_some(),
            Fault::Disconnect(id) => {
                self.conn.set_isolated(*id, true);
                false
            }
            Fault::Reconnect(id) => {
                self.conn.set_isolated(*id, false);
                false
            }
            Fault::Partition(groups) => {
                self.conn.partition(groups);
                false
            }
            Fault::Cut { from, to } => {
                self.conn.cut(*from, *to);
                false
            }
            Fault::Heal => {
                self.conn.heal();
                false
            }
            Fault::Network(cfg) => {
                self.network = cfg.clone();
                self.model = NetworkModel::new(cfg);
                false
            }
            Fault::Hold {
                node,
                for_ms,
                release_on,
                same_node,
                max_ms,
            } => {
                let key = self.next_hold_key;
                self.next_hold_key += 1;
                let deadline = self.now + ms_to_us(*max_ms).max(ms_to_us(*for_ms));
                self.holds.push((
                    key,
                    ActiveHold {
                        node: *node,
                        window_end: self.now + ms_to_us(*for_ms),
                        release_on: release_on.clone(),
                        same_node: *same_node,
                        deadline,
                    },
                ));
                self.hold_deadline = self.hold_deadline.min(deadline);
                false
            }
            Fault::Release => {
                let keys: Vec<u64> = self.holds.iter().map(|(k, _)| *k).collect();
                let released = !keys.is_empty() || !self.held.is_empty();
                for key in keys {
                    self.release_hold(key);
                }
                !released
            }
        };
        let t = self.now;
        if reactive && !noop {
            self.reactive_faults.push((t, fault.clone()));
        }
        self.trace(|| Record::Fault {
            n,
            t,
            fault: fault.clone(),
            noop,
            reactive,
        });
        if let (Fault::Restart(id), false) = (&fault, noop) {
            let id = *id;
            self.stats.restarts += 1;
            let slot = &mut self.slots[id];
            slot.rng = stream(
                self.seed,
                Purpose::Node {
                    id,
                    incarnation: slot.inc,
                },
            );
            slot.next_timer = 0;
            self.step(id, StepIn::Start);
        }
        if !noop {
            self.faults_applied.push(fault);
        }
    }

    /// Run one step of node `id` and route its outputs. A panic of the node becomes a "panic"
    /// violation; the node is then dropped (its state is unusable) and the run halts.
    pub(crate) fn step(&mut self, id: NodeId, input: StepIn<N>) -> Option<N::Reply> {
        if self.halted {
            return None;
        }
        let n = self.next_event_no();
        self.stats.steps += 1;
        let now = self.now;
        let tracing = self.trace.is_some();
        let traced_input = tracing.then(|| step_input_value(&input));
        let mut outputs = std::mem::take(&mut self.outputs);
        debug_assert!(outputs.is_empty());
        let doing = Doing::of(&input);
        let slot = &mut self.slots[id];
        let node_config = &self.node_config;
        let caught = catch(|| {
            let mut ctx = Ctx {
                now,
                id,
                rng: &mut slot.rng,
                out: &mut outputs,
                next_timer: &mut slot.next_timer,
            };
            match input {
                StepIn::Start => {
                    let node = N::start(node_config, &mut ctx, &slot.durable);
                    slot.node = Some(node);
                    None
                }
                StepIn::Deliver { from, msg, .. } => {
                    let node = slot.node.as_mut().expect("delivery to a live node");
                    node.on_message(&mut ctx, from, msg);
                    None
                }
                StepIn::Timer { id: timer, tag } => {
                    let node = slot.node.as_mut().expect("timer of a live node");
                    node.on_timer(&mut ctx, timer, tag);
                    None
                }
                StepIn::Input(input) => {
                    let node = slot.node.as_mut().expect("input to a live node");
                    Some(node.on_input(&mut ctx, input))
                }
            }
        });
        let inc = slot.inc;
        let reply = match caught {
            Ok(reply) => reply,
            Err(panic) => {
                slot.node = None;
                outputs.clear();
                self.outputs = outputs;
                let detail = format!(
                    "{} {panic} (while handling {})",
                    self.specs[id].name,
                    doing.describe(&self.specs)
                );
                self.panicked(vec![id], detail, panic.clone());
                if let Some(input) = traced_input {
                    self.trace(|| Record::Step {
                        n,
                        t: now,
                        node: id,
                        inc,
                        input,
                        out: Vec::new(),
                        reply: None,
                        panic: Some(panic),
                    });
                }
                return None;
            }
        };
        let mut traced_out = Vec::new();
        let mut summary = StepSummary::default();
        for out in outputs.drain(..) {
            if tracing && !matches!(out, Output::Mark(_)) {
                traced_out.push(out.to_value());
            }
            match out {
                Output::Send { to, msg } => {
                    summary.replied |= msg.is_reply();
                    let (msg_id, lost, dup) = self.send(id, to, msg);
                    if let Some(v) = traced_out.last_mut() {
                        v["send"]["id"] = json!(msg_id);
                        if let Some(cause) = lost {
                            v["send"]["lost"] = json!(cause);
                        }
                        if dup {
                            v["send"]["dup"] = json!(true);
                        }
                    }
                }
                Output::SetTimer { id: timer, at, tag } => {
                    self.slots[id].live_timers.push(timer);
                    self.push(
                        at,
                        Event::Timer {
                            node: id,
                            inc,
                            id: timer,
                            tag,
                        },
                    );
                }
                Output::CancelTimer { id: timer } => {
                    self.slots[id].live_timers.retain(|t| *t != timer);
                }
                Output::Persist(write) => {
                    summary.persisted = true;
                    self.slots[id].durable.apply(&write);
                }
                Output::Observe(obs) => {
                    self.pending.push_back((id, obs));
                }
                Output::Mark(mark) => {
                    self.count_mark(mark);
                    self.step_marks.push(mark.name);
                }
            }
        }
        self.outputs = outputs;
        if !self.step_marks.is_empty() || self.reactive.is_some() {
            self.react(id, summary);
        }
        if let Some(input) = traced_input {
            let reply_value = reply.as_ref().map(|r| json!(r));
            self.trace(|| Record::Step {
                n,
                t: now,
                node: id,
                inc,
                input,
                out: traced_out,
                reply: reply_value,
                panic: None,
            });
        }
        reply
    }

    fn count_mark(&mut self, mark: Mark) {
        match self.marks.binary_search_by(|(m, _)| m.cmp(&mark)) {
            Ok(i) => self.marks[i].1 += 1,
            Err(i) => self.marks.insert(i, (mark, 1)),
        }
    }

    /// After a step of `id`: release holds waiting for one of its marks, then let the reactive
    /// rules strike (servers only).
    fn react(&mut self, id: NodeId, summary: StepSummary) {
        let marks = std::mem::take(&mut self.step_marks);
        if !self.holds.is_empty() {
            for &mark in &marks {
                let due: Vec<u64> = self
                    .holds
                    .iter()
                    .filter(|(_, h)| h.release_on == mark && (!h.same_node || h.node == id))
                    .map(|(k, _)| *k)
                    .collect();
                for key in due {
                    let name = self.specs[id].name.clone();
                    let count = self.release_hold(key);
                    self.note(|| {
                        format!("released {count} held messages on mark {mark:?} of {name}")
                    });
                }
            }
        }
        let strike = match &mut self.reactive {
            Some(r) if !self.specs[id].client && self.slots[id].node.is_some() => {
                r.after_step(id, self.now, summary, &marks)
            }
            _ => None,
        };
        self.step_marks = marks;
        self.step_marks.clear();
        let Some(strike) = strike else { return };
        let at = self.now + 1;
        let schedule = |world: &mut Self, t: Time, fault: Fault| {
            world.push(
                t,
                Event::Fault {
                    fault: Box::new(fault),
                    reactive: true,
                },
            );
        };
        let us_to_ms = |us: Time| us as f64 / 1000.0;
        match strike {
            Strike::Crash { node, down } => {
                schedule(self, at, Fault::Crash(node));
                schedule(self, at + down, Fault::Restart(node));
            }
            Strike::Isolate { node, len } => {
                schedule(self, at, Fault::Disconnect(node));
                schedule(self, at + len, Fault::Reconnect(node));
            }
            Strike::Hold {
                node,
                len,
                release_on,
                same_node,
                max,
            } => schedule(
                self,
                at,
                Fault::Hold {
                    node,
                    for_ms: us_to_ms(len),
                    release_on,
                    same_node,
                    max_ms: us_to_ms(max),
                },
            ),
        }
    }

    /// Ends the hold `key`: its messages are queued, each after the delay the network drew for
    /// it. Returns how many were held.
    fn release_hold(&mut self, key: u64) -> usize {
        self.holds.retain(|(k, _)| *k != key);
        self.hold_deadline = self
            .holds
            .iter()
            .map(|(_, h)| h.deadline)
            .min()
            .unwrap_or(Time::MAX);
        let held = std::mem::take(&mut self.held);
        let mut count = 0;
        for h in held {
            if h.hold != key {
                self.held.push(h);
                continue;
            }
            count += 1;
            if let Some(d2) = h.dup {
                let copy = h.msg.clone();
                self.push(
                    self.now + d2,
                    Event::Deliver {
                        from: h.from,
                        to: h.to,
                        id: h.id,
                        msg: copy,
                    },
                );
            }
            self.push(
                self.now + h.delay,
                Event::Deliver {
                    from: h.from,
                    to: h.to,
                    id: h.id,
                    msg: h.msg,
                },
            );
        }
        count
    }

    /// Releases the holds whose deadline has come.
    pub(crate) fn release_due_holds(&mut self) {
        let due: Vec<u64> = self
            .holds
            .iter()
            .filter(|(_, h)| h.deadline <= self.now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let node = self
                .holds
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, h)| h.node);
            let count = self.release_hold(key);
            if let Some(node) = node {
                let name = self.specs[node].name.clone();
                self.note(|| {
                    format!("released {count} held messages of {name}: the hold's time is up")
                });
            }
        }
    }

    /// Hand a message to the network: decide its fate now, queue its delivery.
    fn send(&mut self, from: NodeId, to: NodeId, msg: N::Msg) -> (u64, Option<DropCause>, bool) {
        assert!(
            to < self.slots.len(),
            "node {from} sent to unknown node {to}"
        );
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        self.stats.messages_sent += 1;
        let size = msg.size_bytes() as u64;
        self.stats.bytes_sent += size;
        if !msg.is_reply() {
            self.stats.requests_sent += 1;
            self.stats.request_bytes += size;
        }
        let kind = msg.kind();
        match self
            .sent_by_kind
            .iter_mut()
            .find(|(k, _)| std::ptr::eq(*k, kind) || *k == kind)
        {
            Some((_, c)) => *c += 1,
            None => self.sent_by_kind.push((kind, 1)),
        }
        if !self.conn.connected(from, to) {
            self.stats.dropped_partition += 1;
            return (id, Some(DropCause::Partition), false);
        }
        match self.model.draw_fate(&mut self.net_rng, msg.is_reply()) {
            Fate::Lost => {
                self.stats.dropped_random += 1;
                (id, Some(DropCause::Random), false)
            }
            Fate::Deliver { delay, duplicate } => {
                if !self.holds.is_empty() {
                    if let Some(hold) = capturing_hold(&self.holds, from, to, self.now) {
                        self.stats.held += 1;
                        if duplicate.is_some() {
                            self.stats.duplicated += 1;
                        }
                        self.held.push(Held {
                            hold,
                            from,
                            to,
                            id,
                            msg,
                            delay,
                            dup: duplicate,
                        });
                        return (id, None, duplicate.is_some());
                    }
                }
                if let Some(d2) = duplicate {
                    self.stats.duplicated += 1;
                    let copy = msg.clone();
                    self.push(
                        self.now + d2,
                        Event::Deliver {
                            from,
                            to,
                            id,
                            msg: copy,
                        },
                    );
                }
                self.push(self.now + delay, Event::Deliver { from, to, id, msg });
                (id, None, duplicate.is_some())
            }
        }
    }

    pub(crate) fn deliver(&mut self, from: NodeId, to: NodeId, id: u64, msg: N::Msg) {
        let cause = if self.slots[to].node.is_none() {
            Some(DropCause::Crashed)
        } else if !self.conn.connected(from, to) {
            Some(DropCause::Partition)
        } else {
            None
        };
        match cause {
            None => {
                self.stats.messages_delivered += 1;
                self.step(to, StepIn::Deliver { from, id, msg });
            }
            Some(cause) => {
                let n = self.next_event_no();
                match cause {
                    DropCause::Crashed => self.stats.dropped_crashed += 1,
                    _ => self.stats.dropped_partition += 1,
                }
                let t = self.now;
                self.trace(|| Record::Drop {
                    n,
                    t,
                    from,
                    to,
                    id,
                    cause,
                    kind: msg.kind().to_string(),
                });
            }
        }
    }

    pub(crate) fn fire_timer(&mut self, node: NodeId, inc: u32, id: TimerId, tag: u64) {
        let slot = &mut self.slots[node];
        if slot.inc != inc || slot.node.is_none() {
            return;
        }
        let Some(pos) = slot.live_timers.iter().position(|t| *t == id) else {
            return; // cancelled
        };
        slot.live_timers.swap_remove(pos);
        self.stats.timers_fired += 1;
        self.step(node, StepIn::Timer { id, tag });
    }
}

/// What a node step was doing, kept (cheaply) to describe a panic.
#[derive(Clone, Copy)]
enum Doing {
    Start,
    Deliver { from: NodeId, id: u64 },
    Timer { tag: u64 },
    Input,
}

impl Doing {
    fn of<N: Node>(input: &StepIn<N>) -> Doing {
        match input {
            StepIn::Start => Doing::Start,
            StepIn::Deliver { from, id, .. } => Doing::Deliver {
                from: *from,
                id: *id,
            },
            StepIn::Timer { tag, .. } => Doing::Timer { tag: *tag },
            StepIn::Input(_) => Doing::Input,
        }
    }
    fn describe(self, specs: &[NodeSpec]) -> String {
        match self {
            Doing::Start => "its start".into(),
            Doing::Deliver { from, id } => {
                let name = specs.get(from).map_or("?", |s| s.name.as_str());
                format!("message {id} from {name}")
            }
            Doing::Timer { tag } => format!("a timer (tag {tag})"),
            Doing::Input => "a call from the harness".into(),
        }
    }
}

fn step_input_value<N: Node>(input: &StepIn<N>) -> StepInput {
    match input {
        StepIn::Start => StepInput::Start,
        StepIn::Deliver { from, id, msg } => StepInput::Deliver {
            from: *from,
            id: *id,
            msg: json!(msg),
        },
        StepIn::Timer { id, tag } => StepInput::Timer { id: *id, tag: *tag },
        StepIn::Input(i) => StepInput::Input { input: json!(i) },
    }
}
