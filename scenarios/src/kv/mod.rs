//! The KV service wired into the engine: server and clerk nodes and the 6.824 KV tester.

pub mod node;
pub mod replicas;
pub mod tester;

#[cfg(test)]
mod checks_tests;
