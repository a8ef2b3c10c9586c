#![forbid(unsafe_code)]
//! `scenarios`: wires the systems under test (the engine's ping-pong example, Raft, the KV
//! service) into the `sim` engine, reads scenario files, runs checkers, and builds the `sim`
//! command.

pub mod bench;
pub mod bench_speed;
pub mod catalog;
pub mod cli;
pub mod clocks;
pub mod digest;
pub mod explain;
pub mod explore;
pub mod fuzz;
pub mod histories;
pub mod kv;
pub mod marks;
pub mod power;
pub mod raft;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod steps;
pub mod view;
pub mod wire;
