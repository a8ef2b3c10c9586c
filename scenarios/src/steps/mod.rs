//! The step language of scenario files and its interpreter.

pub mod machine;
pub mod spec;
pub mod validate;

pub use machine::{Env, Flow, Machine, System};
pub use spec::Step;
