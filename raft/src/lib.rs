#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! Raft consensus (the extended Raft paper: Figure 2 plus Section 7 log
//! compaction) as a pure, deterministic state machine.
//!
//! A [`Raft`] node knows nothing about clocks, threads, sockets or engines.
//! Every input is a method call ([`Raft::handle_message`], [`Raft::tick`],
//! [`Raft::start`], [`Raft::snapshot`]); every output is buffered in a
//! [`Ready`] that the caller drains with [`Raft::take_ready`] after each call.
//! Virtual time (`now`, microseconds) and randomness (`rng`) are passed in, so
//! a run is a pure function of its inputs.
//!
//! Handling a `Ready`, in order:
//! 1. apply every [`StorageOp`] to durable [`Storage`] (so the vote or log
//!    entries a message vouches for are durable before the message leaves),
//! 2. send the messages,
//! 3. hand the [`Apply`]s to the service, in order,
//! 4. optionally record the [`Event`]s,
//! 5. answer the ReadIndex reads of [`Ready::reads`] once the service applied through
//!    their index.

mod append;
#[cfg(test)]
mod bug_tests;
mod bugs;
mod commit;
mod config;
mod election;
#[cfg(test)]
mod feature_tests;
mod lease;
mod log;
mod log_sizes;
mod message;
mod prevote;
mod raft;
#[cfg(test)]
mod raft_tests;
mod read_index;
mod ready;
mod replication;
mod snapshot;
#[cfg(test)]
mod stale_replies;
mod storage;
#[cfg(test)]
mod testing;

pub use crate::bugs::{Area, Bug, Bugs};
pub use crate::config::Config;
pub use crate::log::RaftLog;
pub use crate::message::Message;
pub use crate::raft::{Raft, Role};
pub use crate::read_index::ReadRefusal;
pub use crate::ready::{Apply, Event, ReadState, Ready};
pub use crate::storage::{Entry, Snapshot, Storage, StorageOp};

/// Identifies a Raft peer; an index into the cluster's member list.
pub type NodeId = usize;

/// A state-machine command carried in log entries.
pub trait Command:
    Clone + std::fmt::Debug + PartialEq + serde::Serialize + serde::de::DeserializeOwned
{
    /// Approximate encoded size in bytes (for persisted-size and bytes-sent accounting).
    fn size_bytes(&self) -> usize;
}

impl Command for u64 {
    fn size_bytes(&self) -> usize {
        8
    }
}

impl Command for String {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl Command for Vec<u8> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Command;

    /// The sizes charged to the built-in command types: a `u64` is a word, a string or byte
    /// vector its length in bytes (what persisted-size accounting and `maxraftstate` see).
    #[test]
    fn built_in_commands_are_charged_their_byte_length() {
        assert_eq!(7u64.size_bytes(), 8);
        assert_eq!(String::new().size_bytes(), 0);
        assert_eq!("ünï".to_string().size_bytes(), 5);
        assert_eq!(vec![1u8, 2, 3].size_bytes(), 3);
        assert_eq!(Vec::<u8>::new().size_bytes(), 0);
    }
}
