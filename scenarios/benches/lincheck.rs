//! Times the linearizability checker on every shared history with a known verdict.
//!
//! Run with `cargo bench -p scenarios --bench lincheck`. The histories are read from
//! `$DETSIM_SHARED` or `../shared/histories/porcupine` next to the workspace.

use scenarios::histories::{check_history, load};
use sim::linearizability::Verdict;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn shared_dir() -> PathBuf {
    match std::env::var_os("DETSIM_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/histories/porcupine"
        )),
    }
}

fn main() {
    let dir = shared_dir();
    let Ok(verdicts) = std::fs::read_to_string(dir.join("verdicts.tsv")) else {
        println!("SKIPPED: shared histories not found at {}", dir.display());
        return;
    };
    let limit = Duration::from_secs(60);
    let mut total = Duration::ZERO;
    let (mut files, mut ops, mut mismatches) = (0usize, 0usize, 0usize);
    let mut slowest = (Duration::ZERO, String::new());
    println!(
        "{:<22} {:>6} {:>17} {:>9} {:>10}",
        "file", "ops", "verdict", "expected", "ms"
    );
    for line in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let Some((name, expected)) = line.split_once('\t') else {
            continue;
        };
        let (_, history) = match load(&dir.join(name), None) {
            Ok(h) => h,
            Err(e) => {
                println!("{name}: error: {e}");
                mismatches += 1;
                continue;
            }
        };
        let start = Instant::now();
        let report = check_history(&history, limit);
        let took = start.elapsed();
        let want = if expected.trim() == "ok" {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        if report.verdict != want {
            mismatches += 1;
        }
        println!(
            "{:<22} {:>6} {:>17} {:>9} {:>10.3}",
            name,
            history.len(),
            report.verdict.to_string(),
            expected.trim(),
            took.as_secs_f64() * 1e3
        );
        files += 1;
        ops += history.len();
        total += took;
        if took > slowest.0 {
            slowest = (took, name.to_string());
        }
    }
    println!(
        "total: {files} files, {ops} operations, {:.1} ms; slowest: {} ({:.1} ms); wrong verdicts: {mismatches}",
        total.as_secs_f64() * 1e3,
        slowest.1,
        slowest.0.as_secs_f64() * 1e3
    );
}
