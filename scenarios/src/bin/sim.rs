#![forbid(unsafe_code)]
fn main() { println!("{}", scenarios::NAME); }
