#![forbid(unsafe_code)]
//! Raft as a pure state machine.
