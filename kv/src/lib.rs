#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! Linearizable key/value service on Raft (6.824 Lab 3 A and B), as pure
//! state machines: a [`KvServer`] wraps a `raft::Raft<KvCommand>` and a
//! [`Clerk`] drives one client's operations. Inputs are method calls taking
//! virtual time (`now`, µs) and, for servers, an rng; outputs are buffered
//! and drained with `take_ready()`.

#[cfg(test)]
mod bug_tests;
mod bugs;
mod clerk;
mod command;
pub mod digest;
mod messages;
#[allow(missing_docs)]
pub mod model;
#[cfg(test)]
mod read_tests;
mod server;
pub mod snapshot;
mod store;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use crate::bugs::{Bug, Bugs, Layer};
pub use crate::clerk::{Clerk, ClerkReady};
pub use crate::command::{ClientId, KvCommand, Op};
pub use crate::messages::{ClientReply, ClientRequest, KvMessage, ServerEvent, ServerReady};
pub use crate::server::{KvServer, ReadMode};
pub use crate::store::{Executed, KvStore, Outcome};
