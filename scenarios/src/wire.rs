//! What Raft and KV state machines need to live in the engine: their messages on the simulated
//! network and Raft's durable state in the engine's keeping.

use raft::{Storage, StorageOp};
use serde::{Deserialize, Serialize};
use sim::{Ctx, Durable, Message, Node, Payload, Time, TimerId};

/// A protocol message that knows its kind, whether it is a reply, and its size.
pub trait WireMessage: Payload {
    /// The message type's name, for statistics and the viewer.
    fn kind(&self) -> &'static str;
    /// Replies are lost and delayed by their own probabilities.
    fn is_reply(&self) -> bool;
    /// Approximate encoded size in bytes.
    fn size_bytes(&self) -> usize;
}

impl<C: raft::Command> WireMessage for raft::Message<C> {
    fn kind(&self) -> &'static str {
        raft::Message::kind(self)
    }
    fn is_reply(&self) -> bool {
        raft::Message::is_reply(self)
    }
    fn size_bytes(&self) -> usize {
        raft::Message::size_bytes(self)
    }
}

impl WireMessage for kv::KvMessage {
    fn kind(&self) -> &'static str {
        kv::KvMessage::kind(self)
    }
    fn is_reply(&self) -> bool {
        kv::KvMessage::is_reply(self)
    }
    fn size_bytes(&self) -> usize {
        kv::KvMessage::size_bytes(self)
    }
}

/// A protocol message on the simulated network (serialized as the message itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Wire<M>(pub M);

impl<M: WireMessage> Message for Wire<M> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn is_reply(&self) -> bool {
        self.0.is_reply()
    }
    fn size_bytes(&self) -> usize {
        self.0.size_bytes()
    }
}

/// Raft's durable state, kept by the engine like the 6.824 Persister.
#[derive(Clone, Debug)]
pub struct RaftDurable<C>(pub Storage<C>);

impl<C> Default for RaftDurable<C> {
    fn default() -> Self {
        RaftDurable(Storage::default())
    }
}

impl<C: raft::Command> Durable for RaftDurable<C> {
    type Write = StorageOp<C>;
    fn apply(&mut self, write: &StorageOp<C>) {
        self.0.apply(write);
    }
    fn byte_size(&self) -> usize {
        self.0.raft_state_size()
    }
}

/// One engine timer kept armed at a state machine's next deadline (Raft's election or
/// heartbeat time, a clerk's retry time): re-set only when the deadline moves.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineTimer(Option<(TimerId, Time)>);

impl DeadlineTimer {
    /// Arm for `at` (absolute virtual time; `Time::MAX` means no deadline).
    pub fn arm<N: Node>(&mut self, ctx: &mut Ctx<'_, N>, at: Time) {
        let at = at.max(ctx.now());
        if self.0.map(|(_, t)| t) == Some(at) {
            return;
        }
        if let Some((id, _)) = self.0.take() {
            ctx.cancel_timer(id);
        }
        if at != Time::MAX {
            let id = ctx.set_timer(at - ctx.now(), 0);
            self.0 = Some((id, at));
        }
    }

    /// A timer fired: forget it if it was this one.
    pub fn fired(&mut self, id: TimerId) {
        if self.0.map(|(t, _)| t) == Some(id) {
            self.0 = None;
        }
    }
}
