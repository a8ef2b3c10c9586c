//! The integration tests of `scenarios`, one module per subject, built as one test binary:
//! each test binary links the whole workspace, and one link is faster to build than nine.
//! Run one module's tests with a filter, e.g. `cargo test -p scenarios --test integration
//! trace_snapshots`.

mod common;

mod cli;
mod clocks;
mod explain;
mod figure8_power;
mod fuzz;
mod porcupine_histories;
mod raft_catch_up;
mod replay_tamper;
mod scenario_files;
mod trace_snapshots;
mod traced_untraced;
mod view;
