//! Raft wired into the engine: the node adapter, the online safety checks and the 6.824
//! tester's steps.

pub mod checks;
pub mod durable;
pub mod node;
pub mod tester;
