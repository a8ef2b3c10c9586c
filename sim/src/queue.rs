//! The event queue: small keys in a binary heap, ordered by (virtual time, sequence number),
//! pointing into a slab of events whose entries are reused.

use crate::faults::Fault;
use crate::node::{Node, NodeId, Time, TimerId};
use std::cmp::Reverse;

/// A queued happening.
pub(crate) enum Event<N: Node> {
    Deliver {
        from: NodeId,
        to: NodeId,
        id: u64,
        msg: N::Msg,
    },
    Timer {
        node: NodeId,
        inc: u32,
        id: TimerId,
        tag: u64,
    },
    Wake {
        tag: u64,
    },
    /// A sync of a realistic disk completes (`disk.rs`).
    Sync {
        node: NodeId,
        batch: u64,
    },
    /// Boxed: faults are rare and large; keeping them out of line keeps queued events small.
    /// `reactive` if a reactive fault scheduled it (the trace says so).
    Fault {
        fault: Box<Fault>,
        reactive: bool,
    },
}

/// Queue entries are small keys, earliest first: (time, sequence number, index of the event
/// in the slab). The events themselves stay put in the slab, so heap moves stay cheap.
pub(crate) type QueueKey = Reverse<(Time, u64, u32)>;

/// Holds queued events; freed entries are reused, so the steady state allocates nothing.
pub(crate) struct Slab<N: Node> {
    pub(crate) entries: Vec<Option<Event<N>>>,
    pub(crate) free: Vec<u32>,
}

impl<N: Node> Slab<N> {
    pub(crate) fn insert(&mut self, event: Event<N>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                debug_assert!(self.entries[i as usize].is_none());
                self.entries[i as usize] = Some(event);
                i
            }
            None => {
                self.entries.push(Some(event));
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 queued events")
            }
        }
    }
    pub(crate) fn take(&mut self, i: u32) -> Event<N> {
        self.free.push(i);
        self.entries[i as usize]
            .take()
            .expect("a queued event is taken once")
    }
}
