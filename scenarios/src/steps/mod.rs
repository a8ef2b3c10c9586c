//! The step language of scenario files and its interpreter.

pub mod env;
pub mod faults;
pub mod machine;
pub mod spec;
pub mod validate;

pub use env::Env;
pub use machine::{Flow, Machine, System};
pub use spec::Step;
