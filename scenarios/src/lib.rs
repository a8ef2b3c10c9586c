#![forbid(unsafe_code)]
pub const NAME: &str = "x";
