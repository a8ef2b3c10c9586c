//! The scheduler: one thread, one event queue ordered by (virtual time, sequence number), the
//! nodes, the network and the fault injector. [`Sim::run`] drives a run to its end.

use crate::checker::{Failure, Undecided, Violation};
use crate::faults::Fault;
use crate::network::{Connectivity, DropCause, Fate, NetworkConfig, NetworkModel};
use crate::node::{Ctx, Durable, Mark, Message, Node, NodeId, Output, Time, TimerId};
use crate::panics::{catch, Panic};
use crate::queue::{Event, QueueKey, Slab};
use crate::reactive::{capturing_hold, ActiveHold, Held, Reactive, ReactiveState, StepSummary};
use crate::rng::{stream, Purpose};
use crate::stats::Stats;
use crate::trace::{NodeSpec, Record, TraceSink, Verdict};
use rand_chacha::ChaCha8Rng;
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
    /// Branch points: after event `at_event`, every random stream of the run (network,
    /// harness, reactive faults, each node incarnation's) is drawn from `seed` instead, so the
    /// run's future differs while its past is exactly the original's. In event order.
    pub branches: Vec<Branch>,
}

/// A mark a run reported: how often, and the event number of its first report (where an
/// explorer can branch to see what else could follow it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkStat {
    pub mark: Mark,
    pub count: u64,
    pub first_event: u64,
    /// The virtual time of that first report.
    pub first_time: Time,
}

/// A branch point of a run (see [`SimConfig::branches`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub at_event: u64,
    pub seed: u64,
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
    /// A check's failure that let the run go on, when another failure was the violation.
    pub also: Vec<Violation>,
    pub end_time: Time,
    pub stats: Stats,
    /// How often each mark (name, context) was reported, and when first: the run's coverage.
    pub marks: Vec<MarkStat>,
    /// The faults reactive rules made happen, in order, with their times: with the scheduled
    /// faults they are everything that was done to the cluster (a shrinker replays them as a
    /// fixed schedule).
    pub reactive_faults: Vec<(Time, Fault)>,
}

pub(crate) struct Slot<N: Node> {
    pub(crate) node: Option<N>,
    /// Bumped by every crash, so timers of a dead incarnation never fire in the next.
    pub(crate) inc: u32,
    pub(crate) durable: N::Durable,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) next_timer: TimerId,
    /// Timers set and not yet fired or cancelled (a handful per node).
    pub(crate) live_timers: Vec<TimerId>,
    /// The node's clock (hardware: it survives crashes).
    pub(crate) clock: crate::clock::NodeClock,
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
    /// The seed the random streams are drawn from: the run's, or the latest branch's.
    pub(crate) stream_seed: u64,
    pub(crate) now: Time,
    pub(crate) deadline: Time,
    pub(crate) event_no: u64,
    pub(crate) seq: u64,
    pub(crate) next_msg_id: u64,
    pub(crate) node_config: N::Config,
    pub(crate) specs: Vec<NodeSpec>,
    pub(crate) slots: Vec<Slot<N>>,
    pub(crate) queue: BinaryHeap<QueueKey>,
    pub(crate) slab: Slab<N>,
    /// Messages sent per kind; few kinds, so a linear scan beats hashing.
    pub(crate) sent_by_kind: Vec<(&'static str, u64)>,
    pub(crate) network: NetworkConfig,
    pub(crate) model: NetworkModel,
    pub(crate) conn: Connectivity,
    pub(crate) net_rng: ChaCha8Rng,
    pub(crate) harness_rng: ChaCha8Rng,
    pub(crate) outputs: Vec<Output<N>>,
    pub(crate) pending: VecDeque<(NodeId, N::Obs)>,
    pub(crate) faults_applied: Vec<Fault>,
    pub(crate) stats: Stats,
    pub(crate) trace: Option<TraceSink>,
    pub(crate) failure: Option<Violation>,
    pub(crate) undecided: Vec<Undecided>,
    pub(crate) stopped: bool,
    /// Set by a panic: no node steps any more, the run ends after the current event.
    pub(crate) halted: bool,
    pub(crate) reactive: Option<ReactiveState>,
    /// Holds in force, by key, in the order they started.
    pub(crate) holds: Vec<(u64, ActiveHold)>,
    pub(crate) next_hold_key: u64,
    /// Messages held back, in the order they were sent.
    pub(crate) held: Vec<Held<N::Msg>>,
    /// The earliest deadline of a hold in force (`Time::MAX` if none).
    pub(crate) hold_deadline: Time,
    /// Marks reported so far with their counts and the event of their first report; few
    /// distinct ones, so a sorted vector.
    pub(crate) marks: Vec<MarkStat>,
    /// Marks of the current step (reused buffer).
    pub(crate) step_marks: Vec<&'static str>,
    pub(crate) reactive_faults: Vec<(Time, Fault)>,
    /// Nodes whose durable state changed since the checkers last looked (most recent last).
    pub(crate) persisted: Vec<NodeId>,
    /// The first failure of a check that lets the run go on ([`World::fail_later`]).
    pub(crate) deferred: Option<Violation>,
}

impl<N: Node> World<N> {
    pub(crate) fn new(cfg: SimConfig, node_config: N::Config) -> Self {
        let n = cfg.nodes.len();
        let mut world = World {
            seed: cfg.seed,
            stream_seed: cfg.seed,
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
                    clock: crate::clock::NodeClock::new(cfg.nodes[id].clock),
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
            persisted: Vec::new(),
            deferred: None,
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

    pub(crate) fn push(&mut self, at: Time, event: Event<N>) {
        debug_assert!(at >= self.now, "events are never scheduled in the past");
        self.seq += 1;
        let slot = self.slab.insert(event);
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    pub(crate) fn next_event_no(&mut self) -> u64 {
        self.event_no += 1;
        self.stats.events += 1;
        self.event_no
    }

    pub(crate) fn trace(&mut self, record: impl FnOnce() -> Record) {
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
    /// A check failed, but the run goes on so that the other checks (those that judge only at
    /// the end, say) get their say: the run's verdict is a violation either way. If another
    /// check fails as well (now or by the end), that failure is the run's violation and this
    /// one is listed after it; else this one is. Only the first such failure is kept.
    pub fn fail_later(&mut self, failure: Failure) {
        if self.deferred.is_some() || self.failure.is_some() {
            return;
        }
        let detail = failure.detail.clone();
        let property = failure.property.clone();
        self.deferred = Some(Violation {
            failure,
            time: self.now,
            event: self.event_no,
            panic: None,
        });
        self.note(|| format!("{property} violated: {detail} (the run goes on, so the checks that judge at the end have their say)"));
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
    pub(crate) fn fail_at(&mut self, failure: Failure, panic: Option<Panic>) {
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

    /// Run one step of node `id` and route its outputs. A panic of the node becomes a "panic"
    /// violation; the node is then dropped (its state is unusable) and the run halts.
    pub(crate) fn step(&mut self, id: NodeId, input: StepIn<N>) -> Option<N::Reply> {
        if self.halted {
            return None;
        }
        let n = self.next_event_no();
        self.stats.steps += 1;
        let now = self.now;
        // The input is encoded now: the step consumes it.
        let traced_input = self.trace.as_mut().map(|sink| traced_input(sink, &input));
        let mut outputs = std::mem::take(&mut self.outputs);
        debug_assert!(outputs.is_empty());
        let doing = Doing::of(&input);
        let slot = &mut self.slots[id];
        let node_config = &self.node_config;
        let caught = catch(|| {
            let mut ctx = Ctx {
                now: slot.clock.local(now),
                true_now: now,
                clock: slot.clock,
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
                if let (Some(input), Some(sink)) = (traced_input, &mut self.trace) {
                    sink.write_step(n, now, id, inc, &input, &[], None, Some(&panic));
                }
                return None;
            }
        };
        // The outputs' JSON texts, separated by commas (marks are not traced).
        let mut traced_out = Vec::new();
        let mut summary = StepSummary::default();
        for out in outputs.drain(..) {
            if let Some(sink) = &mut self.trace {
                match &out {
                    Output::Send { to, msg } => sink.send_begin(&mut traced_out, *to, msg),
                    Output::Mark(_) => {}
                    other => sink.output(&mut traced_out, other),
                }
            }
            match out {
                Output::Send { to, msg } => {
                    summary.replied |= msg.is_reply();
                    let (msg_id, lost, dup) = self.send(id, to, msg);
                    if self.trace.is_some() {
                        TraceSink::send_end(&mut traced_out, Some(msg_id), lost, dup);
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
        if summary.persisted && !self.persisted.contains(&id) {
            self.persisted.push(id);
        }
        if !self.step_marks.is_empty() || self.reactive.is_some() {
            self.react(id, summary);
        }
        if let (Some(input), Some(sink)) = (traced_input, &mut self.trace) {
            let reply_text = reply.as_ref().map(|r| {
                let mut text = Vec::new();
                sink.encode(r, &mut text);
                text
            });
            sink.write_step(
                n,
                now,
                id,
                inc,
                &input,
                &traced_out,
                reply_text.as_deref(),
                None,
            );
        }
        if summary.replied {
            self.check_durable(id);
        }
        reply
    }

    /// After a step that answered a request: a node may say its answer vouches for state it
    /// has not made durable ([`Node::durable_lag`]); that fails the run.
    fn check_durable(&mut self, id: NodeId) {
        let slot = &self.slots[id];
        let Some(node) = slot.node.as_ref() else {
            return;
        };
        if let Some(why) = node.durable_lag(&slot.durable) {
            let name = self.specs[id].name.clone();
            self.fail(Failure::new(
                "persisted before responding",
                vec![id],
                format!("{name} answered a request while {why}"),
            ));
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

/// The JSON text of a step's input. A delivery names its message by id only: the message is
/// in the sender's `send` output (format 2).
fn traced_input<N: Node>(sink: &mut TraceSink, input: &StepIn<N>) -> Vec<u8> {
    let mut text = Vec::new();
    match input {
        StepIn::Start => text.extend_from_slice(b"{\"kind\":\"start\"}"),
        StepIn::Deliver { from, id, .. } => text.extend_from_slice(
            format!("{{\"kind\":\"deliver\",\"from\":{from},\"id\":{id}}}").as_bytes(),
        ),
        StepIn::Timer { id, tag } => text.extend_from_slice(
            format!("{{\"kind\":\"timer\",\"id\":{id},\"tag\":{tag}}}").as_bytes(),
        ),
        StepIn::Input(i) => {
            text.extend_from_slice(b"{\"kind\":\"input\",\"input\":");
            sink.encode(i, &mut text);
            text.push(b'}');
        }
    }
    text
}
