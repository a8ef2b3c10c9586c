#![forbid(unsafe_code)]
//! Linearizable key/value service on Raft.
pub mod model;
