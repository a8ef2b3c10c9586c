//! What Raft and KV state machines need to live in the engine: their messages on the simulated
//! network and Raft's durable state in the engine's keeping.

use serde::{Deserialize, Serialize};
use sim::{Ctx, Message, Node, Payload, Time, TimerId};

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

pub use crate::disk_state::RaftDurable;

/// Sync the writes made so far, then send `messages` (a realistic disk holds every message
/// sent after a sync until the sync completes, so nothing that depends on the writes leaves
/// before they are durable; with the Persister the sync is a no-op). With the
/// `reply-before-sync` bug the replies go out first, ahead of the sync.
pub fn sync_then_send<N: Node, M: WireMessage>(
    ctx: &mut Ctx<'_, N>,
    wrote: bool,
    messages: Vec<(sim::NodeId, M)>,
    bugs: raft::Bugs,
    wrap: impl Fn(Wire<M>) -> N::Msg,
) {
    let mut later = messages;
    if bugs.has(raft::Bug::ReplyBeforeSync) && wrote {
        let (replies, rest): (Vec<_>, Vec<_>) = later.into_iter().partition(|(_, m)| m.is_reply());
        for (to, m) in replies {
            ctx.send(to, wrap(Wire(m)));
        }
        later = rest;
    }
    if wrote {
        ctx.sync();
    }
    for (to, m) in later {
        ctx.send(to, wrap(Wire(m)));
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
