#![forbid(unsafe_code)]
//! The `sim` command.
fn main() {
    std::process::exit(scenarios::cli::main());
}
