//! Helpers shared by the test modules that run the `sim` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root, where scenario paths like `scenarios/raft/x.json` resolve.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `sim` from the workspace root.
pub fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the sim binary runs")
}

/// A path in a temporary folder of this process and of the calling test file (`cli`, `fuzz`,
/// ...): the modules of this binary run at once and reuse names like `undecided.json`.
#[track_caller]
pub fn tmp(name: &str) -> PathBuf {
    let module = Path::new(std::panic::Location::caller().file())
        .file_stem()
        .expect("a source file")
        .to_string_lossy()
        .into_owned();
    let dir = std::env::temp_dir().join(format!("detsim-{module}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
