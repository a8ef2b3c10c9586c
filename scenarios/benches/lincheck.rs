//! Times the linearizability checker on every shared history with a known verdict.
//!
//! Run with `cargo bench -p scenarios --bench lincheck`. The histories are read from
//! `$DETSIM_SHARED` or `../shared/histories/porcupine` next to the workspace.
//!
//! With `-- --kv-seeds A..B FILE...` it instead runs each KV scenario file on seeds A..B, checks
//! each run's client history (10 s limit) and prints, per scenario, the verdicts and the
//! checking time per seed (median and max; add `--per-seed` for every seed, `--save DIR` to
//! write each run's history to DIR in the sim format, for `sim lincheck`), e.g.
//! `cargo bench -p scenarios --bench lincheck -- --kv-seeds 1..50 scenarios/kv/unreliable-one-key.json`.
//!
//! With `-- --long` it times the check of long synthetic KV histories instead (see
//! [`long`]): `cargo bench -p scenarios --bench lincheck -- --long`.

#[path = "lincheck/long.rs"]
mod long;

use scenarios::histories::trace_format::run_kv_history;
use scenarios::histories::{check_history, check_kv, load, write_sim_history};
use scenarios::scenario::Scenario;
use sim::linearizability::Verdict;
use std::path::{Path, PathBuf};
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(k) = args.iter().position(|a| a == "--kv-seeds") {
        let seeds = args.get(k + 1).map(String::as_str).unwrap_or("1..50");
        let files: Vec<&String> = args[k + 2..]
            .iter()
            .filter(|a| !a.starts_with("--"))
            .collect();
        let save = args
            .iter()
            .position(|a| a == "--save")
            .and_then(|k| args.get(k + 1))
            .map(PathBuf::from);
        let files: Vec<&String> = files
            .into_iter()
            .filter(|f| save.as_deref() != Some(Path::new(f.as_str())))
            .collect();
        return kv_runs(
            seeds,
            &files,
            args.iter().any(|a| a == "--per-seed"),
            save.as_deref(),
        );
    }
    if args.iter().any(|a| a == "--long") {
        return long::main(&args);
    }
    shared_histories();
}

fn workspace_path(file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.exists() {
        p.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
    }
}

fn kv_runs(seeds: &str, files: &[&String], per_seed: bool, save: Option<&Path>) {
    let (from, to) = match seeds.split_once("..") {
        Some((a, b)) => (a.parse().unwrap_or(1), b.parse().unwrap_or(50)),
        None => (seeds.parse().unwrap_or(1), seeds.parse().unwrap_or(1)),
    };
    println!(
        "{:<52} {:>5} {:>7} {:>5} {:>5} {:>7} {:>10} {:>10}",
        "scenario", "seeds", "ops", "lin", "not", "unknown", "median ms", "max ms"
    );
    let (mut all_runs, mut all_unknown) = (0usize, 0usize);
    for file in files {
        let path = workspace_path(file);
        let sc = match Scenario::load(&path) {
            Ok(sc) => sc,
            Err(e) => {
                println!("{file}: {e}");
                continue;
            }
        };
        let mut times = Vec::new();
        let mut counts = [0usize; 3];
        let mut ops = 0;
        for seed in from..=to {
            let history = match run_kv_history(&sc, seed, file) {
                Ok(h) => h,
                Err(e) => {
                    println!("{file} seed {seed}: {e}");
                    continue;
                }
            };
            if let Some(dir) = save {
                let stem = Path::new(file.as_str()).file_stem().unwrap_or_default();
                let out = dir.join(format!("{}-{seed}.jsonl", stem.to_string_lossy()));
                std::fs::write(&out, write_sim_history(&history))
                    .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
            }
            let start = Instant::now();
            let report = check_kv(&history, Duration::from_secs(10));
            let took = start.elapsed().as_secs_f64() * 1e3;
            let slot = match report.verdict {
                Verdict::Linearizable => 0,
                Verdict::NotLinearizable => 1,
                Verdict::Unknown => 2,
            };
            counts[slot] += 1;
            ops = ops.max(history.len());
            times.push(took);
            if per_seed {
                println!(
                    "  seed {seed}: {} ops, {}, {took:.3} ms",
                    history.len(),
                    report.verdict
                );
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        let max = times.last().copied().unwrap_or(0.0);
        let name = path
            .file_name()
            .map_or(file.to_string(), |n| n.to_string_lossy().into());
        println!(
            "{name:<52} {:>5} {ops:>7} {:>5} {:>5} {:>7} {median:>10.3} {max:>10.3}",
            times.len(),
            counts[0],
            counts[1],
            counts[2]
        );
        all_runs += times.len();
        all_unknown += counts[2];
    }
    println!("total: {all_runs} runs, {all_unknown} unknown");
}

fn shared_histories() {
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
