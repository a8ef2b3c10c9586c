//! `sim lincheck FILE`: check a history file for linearizability.

use super::{check_history, load, HistoryFormat};
use sim::linearizability::Verdict;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Check a recorded history (sim, Jepsen etcd or porcupine kv format) for linearizability.
#[derive(clap::Args, Debug)]
pub struct LincheckArgs {
    /// The history file.
    pub file: PathBuf,
    /// The file's format (detected from its contents if not given).
    #[arg(long, value_enum)]
    pub format: Option<HistoryFormat>,
    /// Give up with verdict "unknown" after this many seconds of searching.
    #[arg(long, default_value = "10")]
    pub time_limit: f64,
}

/// Runs the check and prints the outcome. Exit codes: 0 linearizable, 1 not linearizable,
/// 2 bad input, 3 unknown (time limit reached).
pub fn run(args: &LincheckArgs) -> i32 {
    let limit = match Duration::try_from_secs_f64(args.time_limit) {
        Ok(d) => d,
        Err(_) => {
            eprintln!(
                "error: --time-limit must be a non-negative number of seconds, got {}",
                args.time_limit
            );
            return 2;
        }
    };
    let start = Instant::now();
    let (format, history) = match load(&args.file, args.format) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let check_start = Instant::now();
    let report = check_history(&history, limit);
    let check_time = check_start.elapsed();
    let elapsed = start.elapsed();
    println!("file: {} (format {format})", args.file.display());
    println!(
        "operations: {}, partitions: {}, search steps: {}",
        report.operations, report.partitions, report.steps
    );
    println!(
        "time: {:.3} s (checking {:.3} ms)",
        elapsed.as_secs_f64(),
        check_time.as_secs_f64() * 1e3
    );
    match report.verdict {
        Verdict::Linearizable => {
            println!("verdict: linearizable");
            0
        }
        Verdict::NotLinearizable => {
            println!("verdict: NOT linearizable");
            println!();
            print!("{report}");
            1
        }
        Verdict::Unknown => {
            println!(
                "verdict: unknown (time limit of {} s reached before a decision)",
                args.time_limit
            );
            3
        }
    }
}
