//! The node interface: a node is a deterministic state machine driven by step functions.
//!
//! Every step receives a [`Ctx`], the node's only window on the world: the virtual clock, its
//! own random stream, and an output buffer for sends, timers, durable writes and observations.
//! A node never touches a wall clock, a thread, a socket, a file or OS randomness, so the engine
//! can replay it step by step from a trace.

use crate::clock::NodeClock;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Index of a node (server or client) in a simulation; dense, from 0.
pub type NodeId = usize;
/// Virtual time in microseconds since the start of the run.
pub type Time = u64;
/// Identifies one timer of one node incarnation; unique within the incarnation.
pub type TimerId = u64;

/// Anything that crosses the node boundary: it must be cloneable, comparable (for replay) and
/// serializable with named fields (for readable traces).
pub trait Payload: Clone + Debug + PartialEq + Serialize + DeserializeOwned {}
impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Payload for T {}

/// A message between nodes. The network model needs a little metadata about it.
pub trait Message: Payload {
    /// A short name of the message type, for statistics, filters and the viewer.
    fn kind(&self) -> &'static str;
    /// Replies are dropped and delayed by their own probabilities (as in labrpc).
    fn is_reply(&self) -> bool {
        false
    }
    /// Approximate encoded size, for bytes-sent accounting.
    fn size_bytes(&self) -> usize;
}

/// A node's durable state, owned by the engine. Writes reach it only through [`Ctx::persist`],
/// so a crashed incarnation (which is dropped) can never write into its successor, the way the
/// 6.824 Persister copies state on crash.
pub trait Durable: Default + Clone + Debug {
    /// One durable write.
    type Write: Payload;
    /// Apply one write. Must be deterministic.
    fn apply(&mut self, write: &Self::Write);
    /// Size in bytes of the state as it would sit on disk (for `maxraftstate`-style bounds).
    fn byte_size(&self) -> usize;
}

/// The step-function interface every simulated node implements.
pub trait Node: Sized {
    /// Shared, immutable configuration every incarnation is built from.
    type Config;
    /// Messages this node exchanges with others.
    type Msg: Message;
    /// Requests the harness (test driver) makes of a node, e.g. "start this command".
    type Input: Payload;
    /// The node's synchronous answer to an input.
    type Reply: Payload;
    /// Facts the node reports to checkers and to the harness, e.g. "became leader of term 5".
    type Obs: Payload;
    /// What survives a crash.
    type Durable: Durable;

    /// Builds an incarnation: fresh when `durable` is the default, otherwise recovering from it.
    fn start(config: &Self::Config, ctx: &mut Ctx<'_, Self>, durable: &Self::Durable) -> Self;
    /// A message from `from` arrived.
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Self::Msg);
    /// A timer this incarnation set (and did not cancel) fired.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: TimerId, tag: u64);
    /// The harness made a request.
    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: Self::Input) -> Self::Reply;

    /// Called after every step in which the node answered a request (sent a reply), with its
    /// durable state: `Some` (saying what differs) if the node's in-memory persistent state is
    /// not what is durable, i.e. its answer may vouch for state a crash would lose. Protocols
    /// whose rules say "persist before responding" (Raft's Figure 2) implement it; the default
    /// checks nothing.
    fn durable_lag(&self, _durable: &Self::Durable) -> Option<String> {
        None
    }
}

/// One output of one step, in the order the node produced it.
#[derive(Debug)]
pub enum Output<N: Node> {
    Send {
        to: NodeId,
        msg: N::Msg,
    },
    SetTimer {
        id: TimerId,
        at: Time,
        tag: u64,
    },
    CancelTimer {
        id: TimerId,
    },
    Persist(<N::Durable as Durable>::Write),
    Observe(N::Obs),
    /// A "sometimes" mark: an abstract protocol event (say "became leader") with a small
    /// context. Marks drive coverage and the faults that react to the run; they are not part
    /// of the node's observable behaviour, so traces and replay leave them out.
    Mark(Mark),
}

/// An abstract event a node reports about itself: a name from a small fixed vocabulary and a
/// small context (e.g. how deep a log truncation went, bucketed). Coverage is the set of
/// (name, context) pairs a run reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub name: &'static str,
    pub context: u32,
}

/// The context of one step: clock, randomness and the output buffer.
pub struct Ctx<'a, N: Node> {
    /// The node's clock reading (its local time, see [`crate::clock`]).
    pub(crate) now: Time,
    /// The true (world) time of the step and the node's clock, to turn a timer's local
    /// duration into the true time it fires at.
    pub(crate) true_now: Time,
    pub(crate) clock: NodeClock,
    pub(crate) id: NodeId,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) out: &'a mut Vec<Output<N>>,
    pub(crate) next_timer: &'a mut TimerId,
}

impl<'a, N: Node> Ctx<'a, N> {
    /// Builds a context outside the engine, for unit tests of a node.
    pub fn detached(
        now: Time,
        id: NodeId,
        rng: &'a mut ChaCha8Rng,
        out: &'a mut Vec<Output<N>>,
        next_timer: &'a mut TimerId,
    ) -> Self {
        Ctx {
            now,
            true_now: now,
            clock: NodeClock::perfect(),
            id,
            rng,
            out,
            next_timer,
        }
    }
    /// The same with a node clock: the step happens at true time `true_now`, and the node
    /// reads `clock.local(true_now)`.
    pub fn detached_with_clock(
        true_now: Time,
        clock: NodeClock,
        id: NodeId,
        rng: &'a mut ChaCha8Rng,
        out: &'a mut Vec<Output<N>>,
        next_timer: &'a mut TimerId,
    ) -> Self {
        Ctx {
            now: clock.local(true_now),
            true_now,
            clock,
            id,
            rng,
            out,
            next_timer,
        }
    }
    /// The node's clock at this step: the virtual time as this node's clock reads it (its own
    /// rate and jumps; the true time with a perfect clock). It can go backwards after a jump.
    pub fn now(&self) -> Time {
        self.now
    }
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// This incarnation's own random stream, derived from the run seed.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }
    /// Send a message; the network decides its fate.
    pub fn send(&mut self, to: NodeId, msg: N::Msg) {
        self.out.push(Output::Send { to, msg });
    }
    /// Fire `on_timer(tag)` after `after` µs of this node's clock (0 is allowed: it fires
    /// after the current step). The timer measures elapsed time at the clock's rate; jumps of
    /// the clock do not move it.
    pub fn set_timer(&mut self, after: Time, tag: u64) -> TimerId {
        let id = *self.next_timer;
        *self.next_timer += 1;
        // `at` is the true time it fires at (the trace's time).
        let at = self.clock.timer_at(self.true_now, after);
        self.out.push(Output::SetTimer { id, at, tag });
        id
    }
    /// Cancel a pending timer; cancelling a fired or unknown timer is a no-op.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.out.push(Output::CancelTimer { id });
    }
    /// Write to durable state (applied by the engine before any message of this step leaves).
    pub fn persist(&mut self, write: <N::Durable as Durable>::Write) {
        self.out.push(Output::Persist(write));
    }
    /// Report a fact to the checkers and the harness.
    pub fn observe(&mut self, obs: N::Obs) {
        self.out.push(Output::Observe(obs));
    }
    /// Report an abstract protocol event (see [`Mark`]) with context 0.
    pub fn mark(&mut self, name: &'static str) {
        self.mark_with(name, 0);
    }
    /// Report an abstract protocol event with a small context.
    pub fn mark_with(&mut self, name: &'static str, context: u32) {
        self.out.push(Output::Mark(Mark { name, context }));
    }
}

impl<N: Node> Output<N> {
    /// The output as a trace shows it: `{"send":{"to":1,"msg":..}}`, `{"timer":{..}}`,
    /// `{"cancel":3}`, `{"persist":..}` or `{"obs":..}` (a mark, which traces leave out, as
    /// `{"mark":..}`). The engine adds a send's message id
    /// and fate.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Output::Send { to, msg } => json!({"send": {"to": to, "msg": msg}}),
            Output::SetTimer { id, at, tag } => json!({"timer": {"id": id, "at": at, "tag": tag}}),
            Output::CancelTimer { id } => json!({ "cancel": id }),
            Output::Persist(w) => json!({ "persist": w }),
            Output::Observe(o) => json!({ "obs": o }),
            Output::Mark(m) => json!({ "mark": m.name, "context": m.context }),
        }
    }
}
